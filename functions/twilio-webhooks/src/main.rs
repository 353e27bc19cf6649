//! Twilio webhooks: signed delivery-status callbacks and inbound texts, on Lambda
//! behind API Gateway, or on 127.0.0.1:3001 when run directly.

use shared::services::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let app = twilio_webhooks::router(Services::from_env().await?);
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        lambda_http::run(twilio_webhooks::on_api_gateway(app)).await
    } else {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
        axum::serve(listener, app).await?;
        Ok(())
    }
}
