//! Every endpoint of the API in one table: the router is built from it and the OpenAPI 3.1
//! description (`GET /openapi.json`) is generated from it, so the two cannot drift apart. Each
//! entry names its method, path, purpose, request body type (its schema derived from the Rust
//! type the handler reads), query parameters and success status.

use std::borrow::Cow;

use axum::Router;
use axum::routing::MethodRouter;
use serde::Serialize;
use shared::services::Services;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{Object, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required,
    ResponseBuilder, ResponsesBuilder,
};
use utoipa::{PartialSchema, ToSchema};

/// One endpoint: what it does and how it is called, and the handler that answers it.
pub struct Endpoint {
    pub method: HttpMethod,
    pub path: String,
    pub summary: Cow<'static, str>,
    pub tag: &'static str,
    pub success: u16,
    pub query: &'static [&'static str],
    pub authenticated: bool,
    body: Option<BodySchema>,
    handler: MethodRouter<Services>,
}

struct BodySchema {
    name: String,
    components: Vec<(String, RefOr<Schema>)>,
}

impl Endpoint {
    pub fn new(
        method: HttpMethod,
        path: impl Into<String>,
        tag: &'static str,
        summary: impl Into<Cow<'static, str>>,
        handler: MethodRouter<Services>,
    ) -> Self {
        let success = match method {
            HttpMethod::Post => 201,
            HttpMethod::Delete => 204,
            _ => 200,
        };
        Self {
            method,
            path: path.into(),
            summary: summary.into(),
            tag,
            success,
            query: &[],
            authenticated: true,
            body: None,
            handler,
        }
    }

    /// The JSON body the handler reads, described by its Rust type.
    pub fn body<T: ToSchema>(mut self) -> Self {
        let mut components = vec![(T::name().into_owned(), T::schema())];
        T::schemas(&mut components);
        self.body = Some(BodySchema { name: T::name().into_owned(), components });
        self
    }

    pub fn answers(mut self, status: u16) -> Self {
        self.success = status;
        self
    }

    pub fn query(mut self, names: &'static [&'static str]) -> Self {
        self.query = names;
        self
    }

    pub fn public(mut self) -> Self {
        self.authenticated = false;
        self
    }

    fn path_parameters(&self) -> impl Iterator<Item = &str> {
        self.path.split('/').filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }

    pub fn method_name(&self) -> &'static str {
        match self.method {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Head => "HEAD",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Trace => "TRACE",
        }
    }
}

/// The router of every endpoint in the table.
pub fn router(endpoints: &[Endpoint]) -> Router<Services> {
    endpoints.iter().fold(Router::new(), |router, e| router.route(&e.path, e.handler.clone()))
}

/// The problem+json body every error answer has.
#[derive(Serialize, ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
struct ProblemSchema {
    /// Stable: `urn:clinic-sms:problem:<slug>`.
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// The field at fault, when one is.
    field: Option<String>,
}

const BEARER: &str = "api_key";

/// The OpenAPI 3.1 description of the endpoints.
pub fn openapi(endpoints: &[Endpoint]) -> OpenApi {
    let mut paths = Paths::new();
    let mut components = ComponentsBuilder::new()
        .schema(ProblemSchema::name(), ProblemSchema::schema())
        .security_scheme(BEARER, SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    for endpoint in endpoints {
        let problem = || {
            ResponseBuilder::new()
                .description("A problem: the request was refused, with the field at fault when there is one.")
                .content(
                    "application/problem+json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                )
                .build()
        };
        let success = ResponseBuilder::new().description(format!("{} succeeded.", endpoint.summary));
        // A 204 has no body (RFC 9110), so it is described without content.
        let success = match endpoint.success {
            204 => success,
            _ => success.content(
                "application/json",
                ContentBuilder::new().schema(Some(Schema::Object(Object::with_type(Type::Object)))).build(),
            ),
        }
        .build();
        let mut responses = ResponsesBuilder::new().response(endpoint.success.to_string(), success);
        for status in ["400", "404", "409", "422"] {
            responses = responses.response(status, problem());
        }
        if endpoint.authenticated {
            responses = responses.response("401", problem()).response("403", problem());
        }
        let mut operation = OperationBuilder::new()
            .summary(Some(endpoint.summary.clone()))
            .tag(endpoint.tag)
            .operation_id(Some(operation_id(endpoint)))
            .responses(responses.build());
        for name in endpoint.path_parameters() {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(String::schema())),
            );
        }
        for name in endpoint.query {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .schema(Some(String::schema())),
            );
        }
        if let Some(body) = &endpoint.body {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(&body.name))).build();
            operation = operation.request_body(Some(
                RequestBodyBuilder::new().content("application/json", content).required(Some(Required::True)).build(),
            ));
            for (name, schema) in &body.components {
                components = components.schema(name.clone(), schema.clone());
            }
        }
        if endpoint.authenticated {
            operation = operation.security(SecurityRequirement::new(BEARER, Vec::<String>::new()));
        }
        paths.add_path_operation(&endpoint.path, vec![endpoint.method.clone()], operation.build());
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("clinic-sms")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The SMS backbone of medical and veterinary clinics: texts, reminders, conversations and reports.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build()
}

fn operation_id(endpoint: &Endpoint) -> String {
    let path: String = endpoint
        .path
        .trim_start_matches("/v1/")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{}_{}", endpoint.method_name().to_ascii_lowercase(), path.trim_matches('_').replace("__", "_"))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn description() -> Value {
        let json = super::openapi(&crate::table()).to_json().expect("serializes");
        serde_json::from_str(&json).expect("JSON")
    }

    /// Found by `cargo xtask fuzz`: the deletes answered an empty 204 that was described as JSON.
    #[test]
    fn a_204_is_described_without_a_body() {
        let doc = description();
        let mut no_content = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                if let Some(answer) = operation["responses"].get("204") {
                    assert!(answer.get("content").is_none(), "{method} {path}: {answer}");
                    no_content += 1;
                }
            }
        }
        assert!(no_content > 0, "the deletes answer 204");
    }

    /// Found by `cargo xtask fuzz`: a daily allowance of 2^31 was accepted (it is a `u32`) while
    /// the description said `int32`, whose largest value is 2^31 - 1.
    #[test]
    fn unsigned_integers_are_described_with_their_whole_range() {
        let doc = description();
        let schemas = &doc["components"]["schemas"];
        let allowance = &schemas["UserInput"]["properties"]["daily_allowance"];
        assert_eq!(
            (&allowance["format"], &allowance["maximum"]),
            (&"int64".into(), &4294967295_u64.into()),
            "{allowance}"
        );
        let threshold = &schemas["SettingsInput"]["properties"]["low_credit_threshold"];
        assert_eq!(threshold["format"], "uint64", "{threshold}");
    }
}
