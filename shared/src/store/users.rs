//! Users: a profile item keyed by id and an email-index item whose conditional put is what
//! makes an email unique. Both are written in one transaction so neither exists alone.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Item, Key, StoreError, Table, WriteOp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    /// Normalised (trimmed, lowercased).
    pub email: String,
    pub name: String,
    /// argon2id PHC string; `None` for accounts that only sign in through a provider.
    pub password_hash: Option<String>,
    pub status: UserStatus,
    /// Sessions carry the version they were issued at; bumping it revokes them all.
    pub token_version: u64,
    pub tenant_id: String,
    pub created_at: i64,
    /// Whether the owner of `email` proved it (a verification link, or a provider that
    /// verified it). Only a verified email may be linked to another sign-in by email.
    #[serde(default)]
    pub email_verified: bool,
    #[serde(skip)]
    pub item_version: u64,
}

impl User {
    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active
    }
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("no such user")]
    NotFound,
    #[error("this sign-in identity or its email already belongs to an account")]
    IdentityTaken,
    #[error("the user changed concurrently too often; try again")]
    Contention,
    #[error("the email verification link is invalid, expired or already used")]
    InvalidVerification,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key of an external sign-in identity: the issuer (OIDC) or provider name plus the
/// provider's stable subject. Never the email.
pub fn identity_key(issuer: &str, subject: &str) -> Key {
    Key::new(format!("IDENT#{issuer}#{subject}"), "USER")
}

pub fn profile_key(user_id: &str) -> Key {
    Key::new(format!("USER#{user_id}"), "PROFILE")
}

/// Verification tokens are stored hashed: the store never holds a usable link.
fn verification_key(token: &str) -> Key {
    use sha2::Digest as _;
    Key::new(
        format!(
            "EMAILVERIFY#{}",
            hex::encode(sha2::Sha256::digest(token.as_bytes()))
        ),
        "TOKEN",
    )
}

/// 256 random bits, base64url.
fn random_token() -> Result<String, StoreError> {
    use base64::Engine as _;
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|error| StoreError::Backend(error.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random))
}

fn email_key(email: &str) -> Key {
    Key::new(format!("EMAIL#{email}"), "USER")
}

/// An index item pointing at a user (email index, external identity).
fn identity_item(key: &Key, user_id: &str) -> Item {
    let mut attributes = super::Attributes::new();
    attributes.insert("user_id".into(), user_id.into());
    Item::new(key.clone(), attributes)
}

fn corrupt(key: &Key, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        pk: key.pk.clone(),
        sk: key.sk.clone(),
        reason: error.to_string(),
    }
}

fn to_item(user: &User) -> Result<Item, StoreError> {
    let key = profile_key(&user.id);
    match serde_json::to_value(user) {
        Ok(serde_json::Value::Object(attributes)) => Ok(Item::new(key, attributes)),
        Ok(_) => Err(corrupt(&key, "a user must serialise to an object")),
        Err(error) => Err(corrupt(&key, error)),
    }
}

fn from_item(item: Item) -> Result<User, StoreError> {
    let recorded = item.attributes.contains_key("email_verified");
    let mut user: User = serde_json::from_value(serde_json::Value::Object(item.attributes))
        .map_err(|error| corrupt(&item.key, error))?;
    // Users stored before the flag existed: a provider-only account records an email only
    // when the provider verified it, so that email is verified; a password account's is not.
    if !recorded {
        user.email_verified = user.password_hash.is_none() && !user.email.is_empty();
    }
    user.item_version = item.version;
    Ok(user)
}

#[derive(Clone)]
pub struct Users {
    table: Arc<dyn Table>,
}

const MAX_UPDATE_ATTEMPTS: usize = 5;

impl Users {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    /// Creates the user; the email must already be normalised.
    pub async fn create(&self, new_user: NewUser) -> Result<User, UserError> {
        self.create_with(new_user, None, true).await
    }

    /// Creates a user signed in through a provider, keyed by the identity. The email is
    /// claimed (unique index) only when the provider verified it; otherwise it is not
    /// recorded at all, so nobody can squat an address they do not own.
    pub async fn create_for_identity(
        &self,
        mut new_user: NewUser,
        identity: &Key,
        email_verified: bool,
    ) -> Result<User, UserError> {
        if !email_verified {
            new_user.email = String::new();
        }
        let claim_email = email_verified && !new_user.email.is_empty();
        self.create_with(new_user, Some(identity), claim_email)
            .await
    }

    /// Adds a sign-in identity to an existing user.
    pub async fn link_identity(&self, user_id: &str, identity: &Key) -> Result<(), UserError> {
        match self
            .table
            .put_if_absent(identity_item(identity, user_id))
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed) => Err(UserError::IdentityTaken),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn by_identity(&self, identity: &Key) -> Result<Option<User>, UserError> {
        let Some(item) = self.table.get(identity).await? else {
            return Ok(None);
        };
        let user_id = item
            .attributes
            .get("user_id")
            .and_then(|id| id.as_str())
            .ok_or_else(|| corrupt(identity, "missing user_id"))?;
        self.by_id(user_id).await
    }

    async fn create_with(
        &self,
        new_user: NewUser,
        identity: Option<&Key>,
        claim_email: bool,
    ) -> Result<User, UserError> {
        let id = uuid::Uuid::now_v7().to_string();
        let user = User {
            tenant_id: id.clone(),
            id,
            email: new_user.email,
            name: new_user.name,
            password_hash: new_user.password_hash,
            status: UserStatus::Active,
            token_version: 1,
            created_at: super::now_epoch_seconds(),
            // A provider-created account claims its email only when the provider verified it.
            email_verified: identity.is_some() && claim_email,
            item_version: 1,
        };
        let mut writes = vec![WriteOp::PutIfAbsent(to_item(&user)?)];
        if claim_email {
            writes.push(WriteOp::PutIfAbsent(identity_item(
                &email_key(&user.email),
                &user.id,
            )));
        }
        if let Some(identity) = identity {
            writes.push(WriteOp::PutIfAbsent(identity_item(identity, &user.id)));
        }
        match self.table.transact(writes).await {
            Ok(()) => Ok(user),
            // The user id is fresh, so the email or the identity was taken.
            Err(StoreError::ConditionFailed) if identity.is_some() => Err(UserError::IdentityTaken),
            Err(StoreError::ConditionFailed) => Err(UserError::EmailTaken),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn by_id(&self, user_id: &str) -> Result<Option<User>, UserError> {
        match self.table.get(&profile_key(user_id)).await? {
            Some(item) => Ok(Some(from_item(item)?)),
            None => Ok(None),
        }
    }

    pub async fn by_email(&self, email: &str) -> Result<Option<User>, UserError> {
        let key = email_key(email);
        let Some(index) = self.table.get(&key).await? else {
            return Ok(None);
        };
        let user_id = index
            .attributes
            .get("user_id")
            .and_then(|id| id.as_str())
            .ok_or_else(|| corrupt(&key, "missing user_id"))?;
        self.by_id(user_id).await
    }

    /// Revokes every session issued so far; returns the new token version.
    pub async fn bump_token_version(&self, user_id: &str) -> Result<u64, UserError> {
        let user = self
            .update(user_id, |user| {
                user.token_version += 1;
                Ok(())
            })
            .await?;
        Ok(user.token_version)
    }

    /// Marks `email` verified, provided it is still the user's email.
    pub async fn mark_email_verified(&self, user_id: &str, email: &str) -> Result<User, UserError> {
        self.update(user_id, |user| {
            if user.email != email || email.is_empty() {
                return Err(UserError::InvalidVerification);
            }
            user.email_verified = true;
            Ok(())
        })
        .await
    }

    /// Read, change, conditional write; retried when another writer got there first.
    async fn update(
        &self,
        user_id: &str,
        change: impl Fn(&mut User) -> Result<(), UserError>,
    ) -> Result<User, UserError> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let mut user = self.by_id(user_id).await?.ok_or(UserError::NotFound)?;
            change(&mut user)?;
            match self
                .table
                .update_if_version(to_item(&user)?, user.item_version)
                .await
            {
                Ok(()) => {
                    user.item_version += 1;
                    return Ok(user);
                }
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(UserError::Contention)
    }

    /// A one-time email verification token for the user's current email, valid `ttl_secs`
    /// from `now`. Only its SHA-256 is stored; the plaintext goes into the mail.
    pub async fn issue_email_verification(
        &self,
        user: &User,
        now: i64,
        ttl_secs: i64,
    ) -> Result<String, UserError> {
        let token = random_token()?;
        let mut attributes = super::Attributes::new();
        attributes.insert("user_id".into(), user.id.clone().into());
        attributes.insert("email".into(), user.email.clone().into());
        let item =
            Item::new(verification_key(&token), attributes).with_expiry(Some(now + ttl_secs));
        self.table.put_if_absent(item).await?;
        Ok(token)
    }

    /// Consumes a verification token (once: a conditional read-and-delete) and marks the
    /// email it was issued for verified.
    pub async fn consume_email_verification(&self, token: &str) -> Result<User, UserError> {
        let item = self
            .table
            .take(&verification_key(token))
            .await?
            .ok_or(UserError::InvalidVerification)?;
        let text = |name: &str| {
            item.attributes
                .get(name)
                .and_then(|value| value.as_str())
                .ok_or_else(|| corrupt(&item.key, format!("missing {name}")))
        };
        let (user_id, email) = (text("user_id")?, text("email")?);
        self.mark_email_verified(user_id, email).await
    }

    /// Claims the right to send `user_id` another verification mail: at most one per
    /// `interval_secs`. False when one was sent more recently.
    pub async fn claim_verification_send(
        &self,
        user_id: &str,
        now: i64,
        interval_secs: i64,
    ) -> Result<bool, UserError> {
        let key = Key::new(format!("USER#{user_id}"), "EMAILVERIFY_SENT");
        let item = Item::new(key, super::Attributes::new()).with_expiry(Some(now + interval_secs));
        match self.table.put_if_absent(item).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}
