//! `token-check`: the HTTP API's Lambda authorizer (payload format 2.0, simple responses).
//!
//! Allows a request whose `Authorization: Bearer` carries a live session JWT or API token
//! and hands API Gateway the caller as context `{user_id, tenant_id, scopes, token_kind}`.
//! Any failure, including a store outage, is a deny: the authorizer fails closed.

use aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use http::header::AUTHORIZATION;
use tributary::auth::{Denied, TokenVerifier};

pub type Request = ApiGatewayV2CustomAuthorizerV2Request;
pub type Response = ApiGatewayV2CustomAuthorizerSimpleResponse;

/// The Authorization header, or the first identity source when headers were not passed.
fn authorization(request: &Request) -> Option<&[u8]> {
    request
        .headers
        .get(AUTHORIZATION)
        .map(|value| value.as_bytes())
        .or_else(|| {
            request
                .identity_source
                .as_ref()
                .and_then(|sources| sources.first())
                .map(|source| source.as_bytes())
        })
}

fn respond(is_authorized: bool, context: serde_json::Value) -> Response {
    let mut response = Response::default();
    response.is_authorized = is_authorized;
    response.context = context;
    response
}

pub async fn handle(verifier: &TokenVerifier, request: &Request) -> Response {
    match verifier.check(authorization(request)).await {
        Ok(principal) => {
            tracing::info!(
                user_id = %principal.user_id,
                token_kind = principal.token_kind.as_str(),
                "allowed"
            );
            respond(true, principal.to_context())
        }
        Err(denied) => {
            match &denied {
                Denied::StoreUnavailable(error) => {
                    tracing::error!(%error, "denied: store unavailable")
                }
                reason => tracing::info!(%reason, "denied"),
            }
            respond(false, serde_json::Value::Object(Default::default()))
        }
    }
}
