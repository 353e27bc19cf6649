//! The local AWS stack and runner behind the README's two commands and the integration tests:
//! moto server from the project's venv ([`tools`], [`moto`]), resources created from the same
//! description `template.yaml` is tested against ([`provision`]), the demo clinic ([`seed`]), and
//! the runner that serves HTTP and polls SQS with Lambda's semantics ([`runner`], [`stack`]).

pub mod moto;
pub mod provision;
pub mod request_count;
pub mod runner;
pub mod seed;
pub mod stack;
pub mod tools;
