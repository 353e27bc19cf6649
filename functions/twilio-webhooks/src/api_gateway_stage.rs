//! API Gateway puts a named stage in front of the path it hands the function (`/prod/twilio/status`),
//! while our routes, and the URL Twilio signs, are the configured public base URL (which then
//! ends in `/prod`) followed by the route. The stage is taken off before routing, so the route,
//! the signed URL and the metric dimension are the same on every stage. `$default` adds nothing.

use axum::Router;
use http::Uri;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use tower::util::MapRequest;

/// The router as Lambda runs it: stage taken off first.
pub type OnApiGateway = MapRequest<Router, fn(Request) -> Request>;

pub fn on_api_gateway(router: Router) -> OnApiGateway {
    MapRequest::new(router, without_stage as fn(Request) -> Request)
}

/// The request with a named stage's prefix taken off its path (query string untouched).
pub fn without_stage(mut request: Request) -> Request {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| s != "$default") else {
        return request;
    };
    let uri = request.uri();
    let path = strip_stage(uri.path(), &stage);
    if path.len() == uri.path().len() {
        return request;
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    // Taken from a valid URI minus a leading segment, so it stays valid; if not, keep the original.
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(stripped) = Uri::from_parts(parts) {
            *request.uri_mut() = stripped;
        }
    }
    request
}

fn strip_stage<'a>(path: &'a str, stage: &str) -> &'a str {
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::strip_stage;

    #[test]
    fn only_a_whole_leading_segment_is_taken_off() {
        assert_eq!(strip_stage("/prod/twilio/status", "prod"), "/twilio/status");
        assert_eq!(strip_stage("/twilio/status", "prod"), "/twilio/status");
        assert_eq!(strip_stage("/production/twilio/status", "prod"), "/production/twilio/status");
        assert_eq!(strip_stage("/prod", "prod"), "/prod");
    }
}
