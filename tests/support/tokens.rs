//! Who a bearer token belongs to: what a fake provider's token endpoint issued, shared with
//! the fake APIs that authorise requests by it (Google's and Microsoft's fakes alike).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Which user each live access token acts for; shared by the token endpoint and the fakes.
#[derive(Clone, Default)]
pub struct TokenBook {
    users: Arc<Mutex<HashMap<String, String>>>,
}

impl TokenBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn allow(&self, token: &str, user: &str) {
        self.users
            .lock()
            .expect("token book")
            .insert(token.to_owned(), user.to_owned());
    }

    /// The token stops working (as when it expires): the next call answers 401.
    pub fn revoke(&self, token: &str) {
        self.users.lock().expect("token book").remove(token);
    }

    pub fn revoke_all(&self) {
        self.users.lock().expect("token book").clear();
    }

    /// The user of an `Authorization: Bearer <token>` header, when the token is live.
    pub fn user_of(&self, authorization: Option<&str>) -> Option<String> {
        let token = authorization?.strip_prefix("Bearer ")?;
        self.users.lock().expect("token book").get(token).cloned()
    }

    /// [`TokenBook::user_of`] on a request's headers.
    pub fn user_of_headers(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        self.user_of(
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )
    }
}
