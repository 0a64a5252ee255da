//! The one list of sources and what each one is: its name, title, configuration type (and
//! that type's JSON Schema), the credentials it accepts, the provider connection it uses and
//! how its connector is built. `GET /sources`, connector creation and the sync engine all
//! read it, so adding a source is its folder (whose `mod.rs` has `pub fn source() -> Source`)
//! plus one line in the [`sources!`] invocation in `connectors/mod.rs`.

use serde::Serialize;

use super::Credentials;

/// Declares every source, one `Variant => module,` line each: the source's module
/// (`connectors/<module>/`), [`SourceKind`] (serde form and [`SourceKind::as_str`] are the
/// module name), `SourceKind::ALL`, `FromStr` and `SourceKind::source()` (its [`Source`]).
macro_rules! sources {
    ($($variant:ident => $module:ident,)+) => {
        $(
            #[cfg(feature = "sync")]
            pub mod $module;
        )+

        /// Every source Tributary can sync.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum SourceKind {
            $($variant,)+
        }

        impl SourceKind {
            pub const ALL: [SourceKind; [$(stringify!($module)),+].len()] =
                [$(SourceKind::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(SourceKind::$variant => stringify!($module),)+
                }
            }

            /// The source's description (name, config schema, credentials, build).
            #[cfg(feature = "sync")]
            pub fn source(self) -> $crate::connectors::registry::Source {
                match self {
                    $(SourceKind::$variant => $module::source(),)+
                }
            }
        }

        impl std::str::FromStr for SourceKind {
            type Err = $crate::connectors::registry::RegistryError;

            fn from_str(name: &str) -> Result<Self, Self::Err> {
                SourceKind::ALL
                    .into_iter()
                    .find(|kind| kind.as_str() == name)
                    .ok_or_else(|| $crate::connectors::registry::RegistryError::UnknownSource(
                        name.to_owned(),
                    ))
            }
        }
    };
}

/// A kind of connector credentials (the `type` of `Credentials`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// `{"type": "basic", "email", "api_token"}`.
    Basic,
    /// `{"type": "bearer", "token"}`.
    Bearer,
    /// `{"type": "connection", "provider"}`: a workspace provider connection.
    Connection,
    /// `{"type": "service_account", "key", "subject"}`: a service-account key (domain-wide
    /// delegation).
    ServiceAccount,
    /// `{"type": "client_credentials", "client_id", "client_secret" | "certificate"}`: an
    /// application's own credentials (app-only access).
    ClientCredentials,
}

impl CredentialKind {
    pub fn of(credentials: &Credentials) -> Self {
        match credentials {
            Credentials::Basic { .. } => CredentialKind::Basic,
            Credentials::Bearer { .. } => CredentialKind::Bearer,
            Credentials::Connection { .. } => CredentialKind::Connection,
            Credentials::ServiceAccount { .. } => CredentialKind::ServiceAccount,
            Credentials::ClientCredentials { .. } => CredentialKind::ClientCredentials,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Basic => "basic",
            CredentialKind::Bearer => "bearer",
            CredentialKind::Connection => "connection",
            CredentialKind::ServiceAccount => "service_account",
            CredentialKind::ClientCredentials => "client_credentials",
        }
    }
}

/// Which workspace provider connection a source can authorise with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionProvider {
    /// A connection to any configured provider: the source's API takes any OAuth bearer
    /// token the operator's app issues (Atlassian through the generic `oauth2` preset).
    Any,
    /// Only the connection to this provider preset, e.g. `"google"`.
    Only(&'static str),
}

impl ConnectionProvider {
    /// The preset's name (`GET /sources` shows `null` for [`ConnectionProvider::Any`]).
    pub fn name(self) -> Option<&'static str> {
        match self {
            ConnectionProvider::Any => None,
            ConnectionProvider::Only(provider) => Some(provider),
        }
    }

    pub fn allows(self, provider: &str) -> bool {
        self.name().is_none_or(|only| only == provider)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown source {0:?}")]
    UnknownSource(String),
    #[error("{kind} accepts credentials of type {accepted}, not {given}")]
    CredentialsKindNotAccepted {
        kind: &'static str,
        given: &'static str,
        accepted: String,
    },
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    #[error("{kind} connects through a {expected} connection, not {given:?}")]
    ProviderNotAccepted {
        kind: &'static str,
        expected: &'static str,
        given: String,
    },
}

impl RegistryError {
    /// The stable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::UnknownSource(_) => "unknown_source",
            RegistryError::CredentialsKindNotAccepted { .. } => "credentials_kind_not_accepted",
            RegistryError::ProviderNotAccepted { .. } => "connection_provider_not_accepted",
            RegistryError::InvalidCredentials(_) => "invalid_credentials",
        }
    }
}

#[cfg(feature = "sync")]
pub use described::*;

#[cfg(feature = "sync")]
mod described {
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::{json, Value};

    use super::{ConnectionProvider, CredentialKind, RegistryError};
    use crate::connectors::{BuildContext, Connector, ConnectorError, Credentials, SourceKind};

    /// A source's configuration type: parsed from the request, checked, stored in its serde
    /// form; its JSON Schema is what `GET /sources` shows.
    pub trait SourceConfig: Serialize + DeserializeOwned + schemars::JsonSchema {
        /// The checks the types cannot express (no network).
        fn check(&self) -> Result<(), ConnectorError>;
    }

    /// Builds a source's connector for one sync (or one connection test).
    pub type BuildFn = fn(BuildContext) -> Result<Box<dyn Connector>, ConnectorError>;

    /// What one source is (see the module docs).
    #[derive(Clone, Copy)]
    pub struct Source {
        /// The kind string, e.g. `"jira"` (= `SourceKind::as_str`).
        pub name: &'static str,
        /// For people, e.g. `"Jira Cloud"`.
        pub title: &'static str,
        pub credential_kinds: &'static [CredentialKind],
        /// Meaningful when `credential_kinds` has [`CredentialKind::Connection`].
        pub provider: ConnectionProvider,
        config_schema: fn() -> schemars::Schema,
        validate: fn(Value) -> Result<Value, ConnectorError>,
        build: BuildFn,
    }

    impl std::fmt::Debug for Source {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Source")
                .field("name", &self.name)
                .field("credential_kinds", &self.credential_kinds)
                .field("provider", &self.provider)
                .finish_non_exhaustive()
        }
    }

    fn schema_of<C: SourceConfig>() -> schemars::Schema {
        schemars::schema_for!(C)
    }

    fn validate_as<C: SourceConfig>(config: Value) -> Result<Value, ConnectorError> {
        let parsed = parse::<C>(config)?;
        serde_json::to_value(parsed).map_err(|error| ConnectorError::Config(error.to_string()))
    }

    /// Errors name the field they are about (`batch_size: invalid type: …`), so a form can
    /// show them next to it.
    fn parse<C: SourceConfig>(config: Value) -> Result<C, ConnectorError> {
        let parsed: C = serde_path_to_error::deserialize(config).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            ConnectorError::Config(if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            })
        })?;
        parsed.check()?;
        Ok(parsed)
    }

    impl Source {
        /// A source configured by `C` that takes basic or bearer credentials; widen with
        /// [`Source::accepting`] and [`Source::with_provider`].
        pub fn new<C: SourceConfig>(
            name: &'static str,
            title: &'static str,
            build: BuildFn,
        ) -> Self {
            Self {
                name,
                title,
                credential_kinds: &[CredentialKind::Basic, CredentialKind::Bearer],
                provider: ConnectionProvider::Any,
                config_schema: schema_of::<C>,
                validate: validate_as::<C>,
                build,
            }
        }

        pub fn accepting(mut self, kinds: &'static [CredentialKind]) -> Self {
            self.credential_kinds = kinds;
            self
        }

        /// The provider connection it uses (implies it accepts a connection).
        pub fn with_provider(mut self, provider: ConnectionProvider) -> Self {
            self.provider = provider;
            self
        }

        /// The JSON Schema of its configuration.
        pub fn config_schema(&self) -> schemars::Schema {
            (self.config_schema)()
        }

        /// The configuration parsed and checked (no network), in its stored form.
        pub fn validate(&self, config: Value) -> Result<Value, ConnectorError> {
            (self.validate)(config)
        }

        pub fn build(&self, context: BuildContext) -> Result<Box<dyn Connector>, ConnectorError> {
            (self.build)(context)
        }

        /// Whether it takes these credentials: their kind, and a connection's provider.
        pub fn check_credentials(&self, credentials: &Credentials) -> Result<(), RegistryError> {
            let kind = CredentialKind::of(credentials);
            if !self.credential_kinds.contains(&kind) {
                return Err(RegistryError::CredentialsKindNotAccepted {
                    kind: self.name,
                    given: kind.as_str(),
                    accepted: self
                        .credential_kinds
                        .iter()
                        .map(|kind| kind.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            if let Credentials::ServiceAccount { key, subject } = credentials {
                key.check().map_err(RegistryError::InvalidCredentials)?;
                if subject.as_deref().is_some_and(|s| !s.contains('@')) {
                    return Err(RegistryError::InvalidCredentials(
                        "subject is the email of the user to act as".into(),
                    ));
                }
            }
            if let Credentials::ClientCredentials {
                client_id,
                client_secret,
                certificate,
            } = credentials
            {
                crate::connectors::client_credentials::check(
                    client_id,
                    client_secret.as_ref(),
                    certificate.as_ref(),
                )
                .map_err(RegistryError::InvalidCredentials)?;
            }
            match (credentials, self.provider) {
                (Credentials::Connection { provider }, ConnectionProvider::Only(expected))
                    if !self.provider.allows(provider) =>
                {
                    Err(RegistryError::ProviderNotAccepted {
                        kind: self.name,
                        expected,
                        given: provider.clone(),
                    })
                }
                _ => Ok(()),
            }
        }

        /// One item of `GET /sources`.
        pub fn describe(&self) -> Value {
            json!({
                "source": self.name,
                "title": self.title,
                "config_schema": self.config_schema(),
                "credential_kinds": self.credential_kinds,
                "provider": self.provider.name(),
            })
        }
    }

    impl BuildContext {
        /// The stored configuration as the source's type (checked again: it may predate a
        /// stricter check).
        pub fn typed_config<C: SourceConfig>(&self) -> Result<C, ConnectorError> {
            parse(self.config.clone())
        }
    }

    /// Every source's description, in `SourceKind::ALL` order.
    pub fn all() -> Vec<Source> {
        SourceKind::ALL
            .into_iter()
            .map(SourceKind::source)
            .collect()
    }

    /// The configuration parsed and validated (no network), in its stored form.
    pub fn validate_config(source: SourceKind, config: Value) -> Result<Value, ConnectorError> {
        source.source().validate(config)
    }

    /// The connector for a stored configuration.
    pub fn build(
        source: SourceKind,
        context: BuildContext,
    ) -> Result<Box<dyn Connector>, ConnectorError> {
        source.source().build(context)
    }
}

#[cfg(all(test, feature = "sync"))]
mod tests {
    use std::str::FromStr;

    use serde_json::json;

    use super::*;
    use crate::connectors::{ConnectorError, SourceKind};

    #[test]
    fn every_kind_round_trips_through_its_name_and_serde_form() {
        for kind in SourceKind::ALL {
            assert_eq!(SourceKind::from_str(kind.as_str()).ok(), Some(kind));
            assert_eq!(serde_json::to_value(kind).ok(), Some(json!(kind.as_str())));
            assert_eq!(
                serde_json::from_value::<SourceKind>(json!(kind.as_str())).ok(),
                Some(kind)
            );
            assert_eq!(kind.source().name, kind.as_str(), "its description's name");
        }
        let names: std::collections::HashSet<_> = SourceKind::ALL.map(SourceKind::as_str).into();
        assert_eq!(names.len(), SourceKind::ALL.len(), "names are unique");
    }

    #[test]
    fn an_unknown_kind_is_rejected() {
        let error = SourceKind::from_str("myspace").err();
        assert_eq!(error.map(|e| e.code()), Some("unknown_source"));
        assert!(serde_json::from_value::<SourceKind>(json!("myspace")).is_err());
        assert!(SourceKind::from_str("Jira").is_err(), "names are exact");
    }

    #[test]
    fn every_source_has_a_title_credentials_and_an_object_schema() {
        for source in all() {
            assert!(!source.title.is_empty(), "{}", source.name);
            assert!(!source.credential_kinds.is_empty(), "{}", source.name);
            let schema = source.config_schema();
            assert_eq!(
                schema.get("type"),
                Some(&json!("object")),
                "{}",
                source.name
            );
            assert!(
                schema.get("properties").is_some_and(|p| p.is_object()),
                "{}: {schema:?}",
                source.name
            );
            assert_eq!(source.describe()["source"], json!(source.name));
        }
    }

    #[test]
    fn validate_parses_checks_and_returns_the_stored_form() {
        let source = SourceKind::Jira.source();
        let stored = source
            .validate(json!({"base_url": "https://example.atlassian.net", "project_keys": ["ENG"]}))
            .expect("valid");
        assert_eq!(
            stored["include_comments"],
            json!(true),
            "defaults filled in"
        );
        for bad in [
            json!({"base_url": "https://example.atlassian.net", "surprise": 1}),
            json!({"base_url": "ftp://example.atlassian.net"}),
            json!({"project_keys": ["ENG"]}),
        ] {
            assert!(
                matches!(source.validate(bad), Err(ConnectorError::Config(_))),
                "refused"
            );
        }
    }

    #[test]
    fn credentials_are_checked_against_the_accepted_kinds_and_provider() {
        let basic = Credentials::Basic {
            email: "a@example.com".into(),
            api_token: "t".into(),
        };
        let connection = |provider: &str| Credentials::Connection {
            provider: provider.into(),
        };
        let only_basic = SourceKind::Jira
            .source()
            .accepting(&[CredentialKind::Basic]);
        assert!(only_basic.check_credentials(&basic).is_ok());
        let refused = only_basic.check_credentials(&connection("google")).err();
        assert_eq!(
            refused.as_ref().map(RegistryError::code),
            Some("credentials_kind_not_accepted")
        );
        assert!(refused.is_some_and(|e| e.to_string().contains("basic")));

        let google = SourceKind::Jira
            .source()
            .accepting(&[CredentialKind::Connection])
            .with_provider(ConnectionProvider::Only("google"));
        assert!(google.check_credentials(&connection("google")).is_ok());
        assert_eq!(
            google
                .check_credentials(&connection("dropbox"))
                .err()
                .map(|e| e.code()),
            Some("connection_provider_not_accepted")
        );
        assert_eq!(google.describe()["provider"], json!("google"));

        let any = SourceKind::Jira.source();
        assert_eq!(any.provider, ConnectionProvider::Any);
        assert!(any.check_credentials(&connection("atlassian")).is_ok());
        assert_eq!(any.describe()["provider"], json!(null));
    }
}
