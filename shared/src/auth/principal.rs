//! Who is calling, as decided by the token check. Crosses the API Gateway boundary as the
//! authorizer's context (flat strings), so it converts to and from that map.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Session,
    ApiToken,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::ApiToken => "api_token",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub user_id: String,
    pub tenant_id: String,
    pub scopes: Vec<String>,
    pub token_kind: TokenKind,
    /// The API token's id, for API tokens.
    pub token_id: Option<String>,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| held == scope)
    }

    /// The authorizer context: every value a string, scopes space-separated (OAuth style).
    pub fn to_context(&self) -> Value {
        let mut context = serde_json::Map::new();
        context.insert("user_id".into(), self.user_id.clone().into());
        context.insert("tenant_id".into(), self.tenant_id.clone().into());
        context.insert("scopes".into(), self.scopes.join(" ").into());
        context.insert("token_kind".into(), self.token_kind.as_str().into());
        if let Some(token_id) = &self.token_id {
            context.insert("token_id".into(), token_id.clone().into());
        }
        Value::Object(context)
    }

    pub fn from_context(context: &HashMap<String, Value>) -> Option<Self> {
        let text = |name: &str| context.get(name).and_then(Value::as_str);
        let token_kind = match text("token_kind")? {
            "session" => TokenKind::Session,
            "api_token" => TokenKind::ApiToken,
            _ => return None,
        };
        Some(Self {
            user_id: text("user_id")?.to_owned(),
            tenant_id: text("tenant_id")?.to_owned(),
            scopes: text("scopes")?
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            token_kind,
            token_id: text("token_id").map(str::to_owned),
        })
    }
}
