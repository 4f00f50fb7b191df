//! Sessions: who a bearer token stands for, and the NATS connection made with that person's
//! own JWT.
//!
//! A login asks identity for a grant (`plantd_identity::client::login`: a fresh user key in
//! this process's memory, the grant sealed to a curve key of this login), then opens one NATS
//! connection with that JWT and the person's inbox prefix. Every request of the session goes
//! over it, so nats-server applies the person's permissions; the bridge has no privileged
//! connection to serve people from.
//!
//! The bearer token is the bridge's own: an HS256 JWT (jsonwebtoken) over `{sid, sub, iat,
//! exp}`, signed with a key made at start and kept only in memory. It carries no NATS
//! material; the session table is the truth, so a logout ends a token at once, and a
//! restart of the bridge ends every session. Expired sessions are reaped and their
//! connections closed.
//!
//! nats-server reports a refused publish or subscription on the side (`-ERR Permissions
//! Violation …`), never as the reply of the request that caused it; each session fans those
//! out on a broadcast channel that [`crate::nats::Nats`] races every request against.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::Client;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use nkeys::KeyPair;
use plantd_identity::client::{LoggedIn, LoginError};
use plantd_identity::permissions::LOGIN_INBOX_PREFIX;
use plantd_schemas::identity::v1::{LogoutRequest, LogoutResponse};
use plantd_shared::codec::Encoding;
use plantd_shared::{ErrorCode, call, connection, subjects};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::ApiError;

/// A role on a scope pattern, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RoleView {
    /// Role name (`admin`, `operator`, `viewer`, …).
    pub role: String,
    /// Scope pattern (`site1.>`); empty: everywhere.
    pub scope: String,
}

/// One logged-in person (or, on a hub without authentication, everyone).
pub struct Session {
    /// Session id (random, in the token).
    pub id: String,
    /// Who.
    pub username: String,
    /// Roles at login.
    pub roles: Vec<RoleView>,
    /// When the session ends, Unix seconds.
    pub expires_unix: i64,
    /// The person's NATS connection.
    pub client: Client,
    /// Refusals nats-server reported for this connection.
    pub refusals: broadcast::Sender<String>,
    /// The login (key and JWT), for logout's proof; `None` on an open hub.
    login: Option<LoggedIn>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("expires_unix", &self.expires_unix)
            .finish_non_exhaustive()
    }
}

/// What a login returns.
#[derive(Debug)]
pub struct Issued {
    /// The bearer token.
    pub token: String,
    /// The session.
    pub session: Arc<Session>,
}

/// The claims of a bridge token.
#[derive(Debug, Serialize, Deserialize)]
struct TokenClaims {
    sid: String,
    sub: String,
    iat: i64,
    exp: i64,
}

/// The session table and everything a login needs.
pub struct Sessions {
    nats_url: String,
    /// The login user's connection; `None` on a hub without authentication.
    login_client: Option<Client>,
    /// The one session of an open hub.
    anonymous: Option<Arc<Session>>,
    table: Mutex<HashMap<String, Arc<Session>>>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    max_sessions: usize,
    timeout: Duration,
}

impl Sessions {
    /// Sessions of a hub with authentication: people log in over `login_client`.
    pub fn with_login(
        nats_url: &str,
        login_client: Client,
        ttl: Duration,
        max_sessions: usize,
        timeout: Duration,
    ) -> Sessions {
        Sessions::new(
            nats_url,
            Some(login_client),
            None,
            ttl,
            max_sessions,
            timeout,
        )
    }

    /// Sessions of a hub without authentication: every request uses `client`.
    pub fn open(nats_url: &str, client: Client, timeout: Duration) -> Sessions {
        let (refusals, _) = broadcast::channel(64);
        let anonymous = Arc::new(Session {
            id: "anonymous".into(),
            username: "anonymous".into(),
            roles: vec![RoleView {
                role: "admin".into(),
                scope: String::new(),
            }],
            expires_unix: i64::MAX,
            client,
            refusals,
            login: None,
        });
        Sessions::new(nats_url, None, Some(anonymous), Duration::MAX, 1, timeout)
    }

    fn new(
        nats_url: &str,
        login_client: Option<Client>,
        anonymous: Option<Arc<Session>>,
        ttl: Duration,
        max_sessions: usize,
        timeout: Duration,
    ) -> Sessions {
        let secret: [u8; 32] = rand::random();
        Sessions {
            nats_url: nats_url.to_string(),
            login_client,
            anonymous,
            table: Mutex::new(HashMap::new()),
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            ttl,
            max_sessions,
            timeout,
        }
    }

    /// Whether people log in here.
    pub fn auth(&self) -> bool {
        self.login_client.is_some()
    }

    /// Whether the connection logins (or the open hub's requests) go over is up.
    pub fn nats_connected(&self) -> bool {
        let client = match (&self.login_client, &self.anonymous) {
            (Some(client), _) => client,
            (None, Some(anonymous)) => &anonymous.client,
            (None, None) => return false,
        };
        client.connection_state() == async_nats::connection::State::Connected
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `session` is still open (not logged out, expired or reaped).
    pub fn is_open(&self, session: &Session) -> bool {
        if self.anonymous.is_some() {
            return true;
        }
        session.expires_unix > time::OffsetDateTime::now_utc().unix_timestamp()
            && self.lock().contains_key(&session.id)
    }

    /// Logs a person in and opens their connection.
    pub async fn login(&self, username: &str, password: &str) -> Result<Issued, ApiError> {
        let Some(login_client) = &self.login_client else {
            return Err(ApiError::not_found(
                "this hub runs without authentication (plant up --no-auth): no login needed",
            ));
        };
        if self.len() >= self.max_sessions {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!("too many sessions ({}); try again later", self.max_sessions),
            ));
        }
        let logged_in =
            plantd_identity::client::login(login_client, username, password, self.timeout)
                .await
                .map_err(|err| match err {
                    LoginError::Call(e) => ApiError::from(e),
                    LoginError::Invalid(message) => ApiError::new(ErrorCode::Internal, message),
                })?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let expires_unix = logged_in
            .expires_unix
            .map_or(now.saturating_add(ttl), |exp| {
                exp.min(now.saturating_add(ttl))
            });
        let (refusals, _) = broadcast::channel(64);
        let client = person_connection(&self.nats_url, &logged_in, refusals.clone())
            .await
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::Unavailable,
                    format!("cannot connect to NATS as {username}: {e}"),
                )
            })?;
        let id = random_id();
        let session = Arc::new(Session {
            id: id.clone(),
            username: logged_in.grant.username.clone(),
            roles: logged_in
                .grant
                .roles
                .iter()
                .map(|r| RoleView {
                    role: r.role.clone(),
                    scope: r.scope.clone(),
                })
                .collect(),
            expires_unix,
            client,
            refusals,
            login: Some(logged_in),
        });
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &TokenClaims {
                sid: id.clone(),
                sub: session.username.clone(),
                iat: now,
                exp: expires_unix,
            },
            &self.encoding,
        )
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot sign a token: {e}")))?;
        self.lock().insert(id, session.clone());
        tracing::info!(user = %session.username, session = %session.id, "logged in");
        Ok(Issued { token, session })
    }

    /// The session of a bearer token (or the anonymous one of an open hub).
    pub fn authenticate(&self, token: Option<&str>) -> Result<Arc<Session>, ApiError> {
        if let Some(anonymous) = &self.anonymous {
            return Ok(anonymous.clone());
        }
        let token = token.ok_or_else(|| {
            ApiError::unauthorized(
                "log in first: send Authorization: Bearer <token> (POST /api/v1/login)",
            )
        })?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<TokenClaims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("the session expired; log in again")
                }
                _ => ApiError::unauthorized("the token is not valid here; log in again"),
            })?
            .claims;
        let session = self
            .lock()
            .get(&claims.sid)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("the session has ended; log in again"))?;
        if session.expires_unix <= time::OffsetDateTime::now_utc().unix_timestamp() {
            return Err(ApiError::unauthorized("the session expired; log in again"));
        }
        Ok(session)
    }

    /// Ends a session: revokes the person's JWT at identity (which makes the server close
    /// every connection using it), then closes the connection. Returns whether identity
    /// confirmed the revocation.
    pub async fn logout(&self, session: &Session) -> bool {
        if self.anonymous.is_some() {
            return false;
        }
        self.lock().remove(&session.id);
        let revoked = match &session.login {
            Some(login) => {
                let subject = subjects::identity::op("logout");
                let request = LogoutRequest {
                    proof: Some(login.proof(&subject)),
                };
                match call::request::<_, LogoutResponse>(
                    &session.client,
                    &subject,
                    &request,
                    Encoding::Protobuf,
                    self.timeout,
                )
                .await
                {
                    Ok(reply) => reply.revoked,
                    Err(err) => {
                        tracing::warn!(user = %session.username, error = %err, "logout: the JWT was not revoked; it stays valid until it expires");
                        false
                    }
                }
            }
            None => false,
        };
        close(&session.client).await;
        tracing::info!(user = %session.username, session = %session.id, revoked, "logged out");
        revoked
    }

    /// Removes expired sessions and closes their connections; returns how many.
    pub async fn reap(&self) -> usize {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let expired: Vec<Arc<Session>> = {
            let mut table = self.lock();
            let ids: Vec<String> = table
                .iter()
                .filter(|(_, s)| s.expires_unix <= now)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| table.remove(id)).collect()
        };
        for session in &expired {
            tracing::info!(user = %session.username, session = %session.id, "session expired");
            close(&session.client).await;
        }
        expired.len()
    }

    /// Closes every session's connection (shutdown).
    pub async fn close_all(&self) {
        let all: Vec<Arc<Session>> = self.lock().drain().map(|(_, s)| s).collect();
        for session in all {
            close(&session.client).await;
        }
    }
}

/// Drains a connection (bounded), so nothing queued is lost and the socket closes.
async fn close(client: &Client) {
    let _ = tokio::time::timeout(Duration::from_secs(2), client.drain()).await;
}

/// A random 128-bit id, hex.
fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The connection of a person: their JWT signed with the key of this login (kept only in
/// memory), their inbox prefix, refusals fanned out on `refusals`.
async fn person_connection(
    url: &str,
    login: &LoggedIn,
    refusals: broadcast::Sender<String>,
) -> Result<Client, async_nats::ConnectError> {
    let key = Arc::new(
        KeyPair::from_seed(&login.seed().map_err(|e| {
            async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::Authentication, e)
        })?)
        .map_err(|e| {
            async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::Authentication, e)
        })?,
    );
    let jwt = login.grant.jwt.clone();
    async_nats::ConnectOptions::with_jwt(jwt, move |nonce| {
        let key = key.clone();
        async move { key.sign(&nonce).map_err(async_nats::AuthError::new) }
    })
    .custom_inbox_prefix(login.grant.inbox_prefix.clone())
    .name(format!("plantd-web-api:{}", login.grant.username))
    .reconnect_delay_callback(connection::reconnect_delay)
    .connection_timeout(Duration::from_secs(5))
    .event_callback(move |event| {
        let refusals = refusals.clone();
        async move {
            if let async_nats::Event::ServerError(err) = event {
                let text = err.to_string();
                if text.to_ascii_lowercase().contains("permissions violation") {
                    let _ = refusals.send(text);
                } else {
                    tracing::warn!(error = %text, "NATS server error on a person's connection");
                }
            }
        }
    })
    .connect(url)
    .await
}

/// The login user's connection (shared by every login; hears only `_INBOX_login.>`).
pub async fn login_connection(
    url: &str,
    creds: &std::path::Path,
) -> Result<Client, async_nats::ConnectError> {
    plantd_shared::creds::auth_options(creds.to_path_buf())
        .custom_inbox_prefix(LOGIN_INBOX_PREFIX)
        .name("plantd-web-api:login")
        .reconnect_delay_callback(connection::reconnect_delay)
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .connect(url)
        .await
}
