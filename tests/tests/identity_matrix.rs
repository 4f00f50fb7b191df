//! The permission matrix, enforced by nats-server: for each role (`admin`, `operator`,
//! `viewer`, `viewer` limited to `site1.>`) and each action, a real connection with creds
//! obtained through `plant login` is allowed or refused exactly as `services/identity/src/
//! roles.rs` (and docs/identity.md) documents. Also: a logged-out (revoked) JWT is refused at
//! connect and its live connection closed; expired, tampered and foreign-signed JWTs are
//! refused; and no seed, password or JWT reaches a log line of the hub.
//!
//! The hub is `plant up` in operator mode, as a developer runs it. A refusal is observed where
//! the server reports it — the `Permissions Violation` error it sends to the connection — and
//! an allowance by its effect (a reply, a delivered message, a watch that yields the key), so a
//! probe cannot pass because the service was merely slow. The matrix is always printed.

mod identity_common;

use std::fmt;
use std::time::Duration;

use async_nats::{Client, ConnectErrorKind, Event};
use futures::StreamExt as _;
use identity_common::{Events, Hub, Login, PROBE_WAIT, connect_with_events, known_seeds, seeds_in};
use plantd_identity::bootstrap::{Bootstrap, Key};
use plantd_identity::claims::{Claims, Permission, Permissions, UserNats, unix_now};
use plantd_identity::issue::issue_claims;
use plantd_shared::creds::Creds;
use plantd_state::watch::{WatchFrom, WatchSpec};
use plantd_tests::server_error;

/// What the server did with an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Refused,
}
use Outcome::{Allowed as A, Refused as R};

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            A => "allowed",
            R => "refused",
        })
    }
}

/// The roles under test: `(user, role binding)`.
const ROLES: [(&str, &str); 4] = [
    ("m-admin", "admin"),
    ("m-operator", "operator"),
    ("m-viewer", "viewer"),
    ("m-viewer1", "viewer@site1.>"),
];

/// An action a user tries.
#[derive(Debug, Clone, Copy)]
enum Action {
    StateGet(&'static str),
    StateSet(&'static str),
    StateWatch(&'static str),
    ForeignDeliver,
    DeliverGroupHijack,
    DirectGet,
    IdentityAdmin,
    BusPublish(&'static str),
    BusSubscribe(&'static str),
    BusReplay(&'static str),
    PipePush,
    PipeStats,
    PipeRetry,
    PipeWork,
    Discovery,
    OthersInbox,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::StateGet(s) => write!(f, "state get {s}"),
            Action::StateSet(s) => write!(f, "state set {s}"),
            Action::StateWatch(s) => write!(f, "state watch {s}"),
            Action::ForeignDeliver => f.write_str("consumer: deliver to set.site2"),
            Action::DeliverGroupHijack => f.write_str("consumer: deliver group state"),
            Action::DirectGet => f.write_str("JetStream direct get site1"),
            Action::IdentityAdmin => f.write_str("identity admin user.list"),
            Action::BusPublish(s) => write!(f, "bus publish control.{s}"),
            Action::BusSubscribe(s) => write!(f, "bus subscribe data.{s}"),
            Action::BusReplay(s) => write!(f, "bus replay data {s}"),
            Action::PipePush => f.write_str("pipe push jobs"),
            Action::PipeStats => f.write_str("pipe stats"),
            Action::PipeRetry => f.write_str("pipe dlq retry jobs"),
            Action::PipeWork => f.write_str("pipe work: pull from jobs"),
            Action::Discovery => f.write_str("$SRV.PING discovery"),
            Action::OthersInbox => f.write_str("subscribe another user's inbox"),
        }
    }
}

/// The documented matrix (services/identity/src/roles.rs), columns in [`ROLES`] order.
const MATRIX: [(Action, [Outcome; 4]); 22] = [
    (Action::StateGet("site1"), [A, A, A, A]),
    (Action::StateGet("site2"), [A, A, A, R]),
    (Action::StateSet("site1"), [A, A, R, R]),
    (Action::StateSet("site2"), [A, A, R, R]),
    (Action::StateWatch("site1"), [A, A, A, A]),
    (Action::StateWatch("site2"), [A, A, A, R]),
    // People get no JetStream API rights: they cannot choose where the server delivers.
    (Action::ForeignDeliver, [A, R, R, R]),
    (Action::DeliverGroupHijack, [A, R, R, R]),
    (Action::DirectGet, [A, R, R, R]),
    (Action::IdentityAdmin, [A, R, R, R]),
    // Bus topics start with their scope: the binding that scopes state scopes buses.
    (Action::BusPublish("site1"), [A, A, R, R]),
    (Action::BusPublish("site2"), [A, A, R, R]),
    (Action::BusSubscribe("site1"), [A, A, A, A]),
    (Action::BusSubscribe("site2"), [A, A, A, R]),
    (Action::BusReplay("site1"), [A, A, A, A]),
    (Action::BusReplay("site2"), [A, A, A, R]),
    // Pipes are plant-wide: unscoped operators push and retry, everyone reads stats, and only
    // services may pull (a pull's reply subject is the caller's choice).
    (Action::PipePush, [A, A, R, R]),
    (Action::PipeStats, [A, A, A, A]),
    (Action::PipeRetry, [A, A, R, R]),
    (Action::PipeWork, [A, R, R, R]),
    (Action::Discovery, [A, A, A, A]),
    // admin subscribes to `>`, so another inbox too; everyone else only to its own.
    (Action::OthersInbox, [A, R, R, R]),
];

/// A bus topic in `scope`.
fn bus_topic(bus: &str, scope: &str) -> String {
    format!("plantd.bus.{bus}.{scope}.probe")
}

/// The attack of issue #9: a consumer on site1's keys that delivers onto site2's `set`.
const FOREIGN_DELIVER: (&str, &str) = (
    "$JS.API.CONSUMER.CREATE.KV_plantd-state.probe_foreign.$KV.plantd-state.site1.>",
    r#"{"stream_name":"KV_plantd-state","config":{"name":"probe_foreign","deliver_subject":"plantd.state.set.site2","filter_subject":"$KV.plantd-state.site1.>","ack_policy":"none","inactive_threshold":2000000000}}"#,
);

/// The same into the state service's queue group.
const GROUP_HIJACK: (&str, &str) = (
    "$JS.API.CONSUMER.CREATE.KV_plantd-state.probe_group.$KV.plantd-state.site1.>",
    r#"{"stream_name":"KV_plantd-state","config":{"name":"probe_group","deliver_subject":"plantd.state.set.site1","deliver_group":"state","filter_subject":"$KV.plantd-state.site1.>","ack_policy":"none","inactive_threshold":2000000000}}"#,
);
const BUCKET: &str = "plantd-state";

/// Logs every user of [`ROLES`] in, after creating it and the scopes the matrix uses.
async fn setup(hub: &Hub) -> anyhow::Result<Vec<(Login, String)>> {
    for scope in ["site1", "site2"] {
        hub.admin(&["scope", "create", scope], None).await?;
        hub.admin(&["state", "set", scope, "k", &format!("v-{scope}")], None)
            .await?;
        hub.admin(
            &["bus", "pub", "data", &format!("{scope}.probe"), scope],
            None,
        )
        .await?;
    }
    let mut logins = Vec::new();
    for (user, role) in ROLES {
        let password = format!("pw-{user}-secret");
        hub.create_user(user, &password, &[role]).await?;
        logins.push((hub.login(user, &password).await?, password));
    }
    Ok(logins)
}

/// Tries `action` as `login` on a fresh connection; `observer` is the bootstrap admin.
async fn probe(
    hub: &Hub,
    observer: &Client,
    login: &Login,
    action: Action,
) -> anyhow::Result<Outcome> {
    let (client, mut events) = login.connect(&hub.url).await?;
    let outcome = match action {
        Action::StateGet(scope) => {
            let subject = format!("plantd.state.get.{scope}");
            request(&client, &mut events, &subject, r#"{"key":"k"}"#).await
        }
        Action::StateSet(scope) => {
            let subject = format!("plantd.state.set.{scope}");
            request(&client, &mut events, &subject, r#"{"key":"m","value":"x"}"#).await
        }
        Action::IdentityAdmin => {
            request(
                &client,
                &mut events,
                "plantd.identity.admin.user.list",
                "{}",
            )
            .await
        }
        Action::Discovery => request(&client, &mut events, "$SRV.PING", "").await,
        Action::StateWatch(scope) => state_watch(&client, &mut events, scope).await,
        Action::ForeignDeliver => {
            request(&client, &mut events, FOREIGN_DELIVER.0, FOREIGN_DELIVER.1).await
        }
        Action::DeliverGroupHijack => {
            request(&client, &mut events, GROUP_HIJACK.0, GROUP_HIJACK.1).await
        }
        Action::DirectGet => {
            let subject = "$JS.API.DIRECT.GET.KV_plantd-state.$KV.plantd-state.site1.k";
            request(&client, &mut events, subject, "").await
        }
        Action::BusPublish(scope) => {
            let topic = bus_topic("control", scope);
            let heard = observer.subscribe(topic.clone()).await?;
            let needle = format!("permissions violation for publish to \"{topic}\"");
            let delivered =
                delivered_while_publishing(&client, &topic, heard, observer.new_inbox());
            decide(delivered, server_error(&mut events, &needle, PROBE_WAIT)).await
        }
        Action::BusSubscribe(scope) => {
            let topic = bus_topic("data", scope);
            listen(observer, &client, &mut events, &topic, &topic).await
        }
        Action::BusReplay(scope) => bus_replay(&client, &mut events, scope).await,
        Action::PipePush => request(&client, &mut events, "plantd.pipe.jobs", "probe").await,
        Action::PipeStats => request(&client, &mut events, "plantd.buses.pipes", "{}").await,
        Action::PipeRetry => {
            request(&client, &mut events, "plantd.buses.dlq.retry.jobs", "{}").await
        }
        Action::PipeWork => {
            // A pull as a worker sends it: the answer (an item or a 408 after 0.5 s) goes to
            // the reply subject the caller chose.
            let inbox = client.new_inbox();
            let mut answers = client.subscribe(inbox.clone()).await?;
            let subject = "$JS.API.CONSUMER.MSG.NEXT.PLANTD_PIPES.jobs";
            let pull = r#"{"batch":1,"expires":500000000}"#;
            client
                .publish_with_reply(subject, inbox, pull.into())
                .await?;
            let answered = async move { answers.next().await.is_some() };
            let needle = format!(
                "permissions violation for publish to \"{}\"",
                subject.to_lowercase()
            );
            decide(answered, server_error(&mut events, &needle, PROBE_WAIT)).await
        }
        Action::OthersInbox => {
            let other = if login.inbox_prefix == "_INBOX_m-viewer" {
                "_INBOX_m-operator"
            } else {
                "_INBOX_m-viewer"
            };
            let pattern = format!("{other}.>");
            listen(
                observer,
                &client,
                &mut events,
                &pattern,
                &format!("{other}.probe"),
            )
            .await
        }
    };
    outcome.map_err(|err| {
        // What the connection saw explains most surprises (a disconnect, another violation).
        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            seen.push(event.to_string());
        }
        err.context(format!("events: {seen:?}"))
    })
}

/// A request: allowed if anything answers (a service error too: the server let it through),
/// refused if the server reports a publish violation.
async fn request(
    client: &Client,
    events: &mut Events,
    subject: &str,
    payload: &'static str,
) -> anyhow::Result<Outcome> {
    let answered = async {
        let reply = client.request(subject.to_owned(), payload.into()).await;
        match reply {
            Ok(_) => true,
            // No responders means the server routed the publish: allowed, but nobody serves it;
            // the matrix needs a service behind every request subject, so call it out.
            Err(err) => {
                eprintln!("  {subject}: {err}");
                false
            }
        }
    };
    let needle = format!(
        "permissions violation for publish to \"{}\"",
        subject.to_lowercase()
    );
    decide(answered, server_error(events, &needle, PROBE_WAIT)).await
}

/// A subscription to `pattern`: allowed if a message the observer publishes to `subject`
/// arrives, refused if the server reports a subscription violation.
async fn listen(
    observer: &Client,
    client: &Client,
    events: &mut Events,
    pattern: &str,
    subject: &str,
) -> anyhow::Result<Outcome> {
    let sub = client.subscribe(pattern.to_owned()).await?;
    let delivered = delivered_while_publishing(observer, subject, sub, observer.new_inbox());
    let needle = format!(
        "permissions violation for subscription to \"{}\"",
        pattern.to_lowercase()
    );
    decide(delivered, server_error(events, &needle, PROBE_WAIT)).await
}

/// Whether `sub` receives `token` while `publisher` publishes it to `subject` every 50 ms.
///
/// Repeated because the two ends are different connections and async-nats' `flush` only
/// empties the socket (no PING/PONG round trip): a single publish can reach the server before
/// the other connection's SUB is processed, and is then lost.
async fn delivered_while_publishing(
    publisher: &Client,
    subject: &str,
    mut sub: async_nats::Subscriber,
    token: String,
) -> bool {
    let publish = async {
        loop {
            if publisher
                .publish(subject.to_owned(), token.clone().into())
                .await
                .is_err()
            {
                return;
            }
            let _ = publisher.flush().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let receive = async {
        while let Some(msg) = sub.next().await {
            if msg.payload.as_ref() == token.as_bytes() {
                return true;
            }
        }
        false
    };
    tokio::select! {
        received = receive => received,
        () = publish => false,
    }
}

/// A watch of `scope` the way `plant state watch` makes it (through the state service):
/// allowed if it yields the key set in that scope, refused if the server reports a publish
/// violation for the watch request.
async fn state_watch(client: &Client, events: &mut Events, scope: &str) -> anyhow::Result<Outcome> {
    let spec = WatchSpec {
        scope: scope.to_owned(),
        subtree: false,
        prefix: String::new(),
        from: WatchFrom::Current,
    };
    let yielded = async {
        match plantd_state::watch::watch(client, BUCKET, spec).await {
            Ok(changes) => {
                let mut changes = std::pin::pin!(changes);
                matches!(changes.next().await, Some(Ok(change)) if change.key == "k")
            }
            Err(err) => {
                eprintln!("  state watch {scope}: {err}");
                false
            }
        }
    };
    decide(
        yielded,
        server_error(
            events,
            "permissions violation for publish to \"plantd.state.watch",
            PROBE_WAIT,
        ),
    )
    .await
}

/// A replay of `scope` on the data bus through the bus service: allowed if it yields the
/// message [`setup`] published there, refused if the server reports a publish violation for
/// the replay request.
async fn bus_replay(client: &Client, events: &mut Events, scope: &str) -> anyhow::Result<Outcome> {
    let spec = plantd_shared::bus::ReplaySpec {
        scope: scope.to_owned(),
        topic: String::new(),
        from: plantd_shared::bus::ReplayFrom::Oldest,
        until: None,
        rate: plantd_shared::bus::ReplayRate::Max,
    };
    let yielded = async {
        match plantd_shared::bus::replay(client, "data", spec).await {
            Ok(messages) => {
                let mut messages = std::pin::pin!(messages);
                matches!(messages.next().await, Some(Ok(m)) if m.payload.as_ref() == scope.as_bytes())
            }
            Err(err) => {
                eprintln!("  bus replay {scope}: {err}");
                false
            }
        }
    };
    decide(
        yielded,
        server_error(
            events,
            "permissions violation for publish to \"plantd.buses.replay",
            PROBE_WAIT,
        ),
    )
    .await
}

/// Allowed when `effect` happens, refused when `violation` is reported; it is a test failure
/// when both or neither happen within [`PROBE_WAIT`].
async fn decide(
    effect: impl Future<Output = bool>,
    violation: impl Future<Output = Option<String>>,
) -> anyhow::Result<Outcome> {
    let effect = tokio::time::timeout(PROBE_WAIT, effect);
    tokio::select! {
        done = effect => match done {
            Ok(true) => Ok(A),
            _ => anyhow::bail!("neither an effect nor a permissions violation within {PROBE_WAIT:?}"),
        },
        refused = violation => match refused {
            Some(_) => Ok(R),
            None => anyhow::bail!("neither an effect nor a permissions violation within {PROBE_WAIT:?}"),
        },
    }
}

/// One matrix cell: what the documentation expects and what the server did (or why the probe
/// could not tell).
type Cell = (Outcome, Result<Outcome, String>);

fn print_matrix(rows: &[(Action, Vec<Cell>)]) -> bool {
    let mut ok = true;
    let mut text = format!("{:<32}", "action \\ role");
    for (_, role) in ROLES {
        text.push_str(&format!("{role:<17}"));
    }
    text.push('\n');
    for (action, cells) in rows {
        text.push_str(&format!("{:<32}", action.to_string()));
        for (expected, got) in cells {
            let cell = match got {
                Ok(got) if got == expected => got.to_string(),
                Ok(got) => {
                    ok = false;
                    format!("{got} (WANT {expected})")
                }
                Err(err) => {
                    ok = false;
                    format!("ERROR: {err}")
                }
            };
            text.push_str(&format!("{cell:<17}"));
        }
        text.push('\n');
    }
    eprintln!("permission matrix at the server (plant up, operator mode):\n{text}");
    ok
}

#[tokio::test]
async fn permission_matrix_is_enforced_by_the_server() -> anyhow::Result<()> {
    let hub = Hub::start(&[]).await?;
    let logins = setup(&hub).await?;
    let (observer, _) = connect_with_events(&hub.url, &hub.admin_creds, None).await?;
    let mut rows = Vec::new();
    for (action, expected) in MATRIX {
        let mut cells = Vec::new();
        for ((login, _), want) in logins.iter().zip(expected) {
            let got = probe(&hub, &observer, login, action)
                .await
                .map_err(|e| format!("{e:#}"));
            cells.push((want, got));
        }
        rows.push((action, cells));
    }
    let matches = print_matrix(&rows);
    let passwords: Vec<&str> = logins.iter().map(|(_, p)| p.as_str()).collect();
    let jwts: Vec<&str> = logins.iter().map(|(l, _)| l.jwt.as_str()).collect();
    let creds: Vec<&std::path::Path> = logins.iter().map(|(l, _)| l.creds.as_path()).collect();
    assert_no_secrets_logged(&hub, &passwords, &jwts, &creds);
    assert!(
        matches,
        "the matrix differs from the documented one (see above)"
    );
    assert!(hub.stop().await?);
    Ok(())
}

/// Fails if any log line of the hub holds a seed, one of `passwords`, or a JWT.
fn assert_no_secrets_logged(
    hub: &Hub,
    passwords: &[&str],
    jwts: &[&str],
    creds: &[&std::path::Path],
) {
    let seeds = known_seeds(&hub.auth_dir(), creds);
    assert!(!seeds.is_empty());
    let mut leaks = Vec::new();
    for (file, text) in hub.logs() {
        for line in text.lines() {
            let secret = seeds_in(line)
                .first()
                .map(|_| "a seed")
                .or_else(|| {
                    seeds
                        .iter()
                        .any(|s| line.contains(s))
                        .then_some("a known seed")
                })
                .or_else(|| {
                    passwords
                        .iter()
                        .any(|p| line.contains(p))
                        .then_some("a password")
                })
                .or_else(|| {
                    jwts.iter()
                        .any(|j| line.contains(j))
                        .then_some("a user JWT")
                })
                .or_else(|| line.contains("eyJ0eXAiOiJKV1Qi").then_some("a JWT"));
            if let Some(what) = secret {
                leaks.push(format!("{}: {what}: {line}", file.display()));
            }
        }
    }
    let files: Vec<String> = hub
        .logs()
        .iter()
        .map(|(f, _)| f.display().to_string())
        .collect();
    eprintln!("checked for secrets: {files:?}");
    assert!(leaks.is_empty(), "secrets in logs:\n{}", leaks.join("\n"));
}

#[tokio::test]
async fn logout_revokes_at_connect_and_closes_the_live_connection() -> anyhow::Result<()> {
    let hub = Hub::start(&[]).await?;
    let password = "pw-revoked-user";
    hub.create_user("gone", password, &["viewer"]).await?;
    hub.create_user("stays", password, &["viewer"]).await?;
    let gone = hub.login("gone", password).await?;
    let stays = hub.login("stays", password).await?;

    let (live, mut events) = gone.connect(&hub.url).await?;
    live.flush().await?;
    let (control, _) = stays.connect(&hub.url).await?;
    let kept = gone.config.path().join("kept.creds");
    std::fs::copy(&gone.creds, &kept)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600))?;
    }

    let logout = hub
        .plant(gone.config.path(), &["logout", "-o", "json"], None)
        .await?;
    assert_eq!(logout.code, 0, "{logout}");
    let out: serde_json::Value = serde_json::from_str(&logout.stdout)?;
    assert_eq!(out["revoked"], true, "{out}");

    // The live connection is closed by the server.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.recv().await {
            eprintln!("revoked connection event: {event}");
            if matches!(event, Event::Disconnected | Event::Closed) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(closed, "the server did not close the revoked connection");

    // A new connection with the same JWT is refused; the other user is unaffected.
    let again = connect_with_events(&hub.url, &kept, Some(&gone.inbox_prefix)).await;
    assert_auth_refused(again.map(|_| ()), "revoked JWT");
    control.flush().await?;
    assert_eq!(
        control.connection_state(),
        async_nats::connection::State::Connected
    );
    assert_no_secrets_logged(&hub, &[password], &[&gone.jwt, &stays.jwt], &[&kept]);
    assert!(hub.stop().await?);
    Ok(())
}

fn assert_auth_refused(result: anyhow::Result<()>, what: &str) {
    match result {
        Ok(()) => panic!("{what}: admitted"),
        Err(err) => {
            let kind = err
                .downcast_ref::<async_nats::ConnectError>()
                .map(|e| e.kind());
            assert_eq!(
                kind,
                Some(ConnectErrorKind::AuthorizationViolation),
                "{what}: refused for another reason: {err:#}"
            );
        }
    }
}

/// Writes a creds file for `jwt` and `user` in `dir`.
fn creds_file(
    dir: &std::path::Path,
    name: &str,
    jwt: &str,
    user: &nkeys::KeyPair,
) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(format!("{name}.creds"));
    std::fs::write(
        &path,
        Creds::render(jwt, &user.seed().expect("a user seed")),
    )
    .expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

#[tokio::test]
async fn expired_tampered_and_foreign_jwts_are_refused() -> anyhow::Result<()> {
    let hub = Hub::start(&[]).await?;
    let dir = tempfile::tempdir()?;
    let setup = Bootstrap::open(&hub.auth_dir())?;
    let signing = setup.load_key(Key::PlantdSigning)?;
    let account = setup.plantd_account.public_key.clone();
    let viewer = Permissions {
        publish: Permission::allow(["plantd.state.get.>"]),
        subscribe: Permission::allow(["_INBOX.>"]),
        resp: None,
    };
    let issue = |name: &str, tweak: &dyn Fn(&mut Claims<UserNats>), signer: &nkeys::KeyPair| {
        let user = nkeys::KeyPair::new_user();
        let nats = UserNats::new(viewer.clone()).issued_by(&account);
        let mut claims = Claims::new(name, &user.public_key(), nats);
        tweak(&mut claims);
        let issued = issue_claims(&claims, &user, signer).expect("issue");
        (
            creds_file(dir.path(), name, &issued.jwt, &user),
            issued.jwt,
            user,
        )
    };
    let connect = |path: std::path::PathBuf| {
        let url = hub.url.clone();
        async move { connect_with_events(&url, &path, None).await }
    };

    // Expiry: valid for 2 s — admitted, then kicked, then refused.
    let now = unix_now();
    let (short, _, _) = issue("short", &|c| c.exp = Some(now + 2), &signing);
    let (client, mut events) = connect(short.clone()).await?;
    client.flush().await?;
    let expired = server_error(&mut events, "expired", Duration::from_secs(10)).await;
    assert!(
        expired.is_some(),
        "the server did not expire the connection"
    );
    // The server checks `exp` in whole seconds (`now > exp`): within the expiry second a
    // connect is still admitted, so try again once that second has passed.
    while unix_now() <= now + 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_auth_refused(connect(short).await.map(|_| ()), "expired JWT (after use)");
    let (stale, _, _) = issue(
        "stale",
        &|c| {
            c.iat = now - 120;
            c.exp = Some(now - 60);
        },
        &signing,
    );
    assert_auth_refused(connect(stale).await.map(|_| ()), "expired JWT");

    // Tampering: widen the permissions of a valid JWT, keep its signature.
    let (valid, jwt, user) = issue("valid", &|_| {}, &signing);
    connect(valid).await?.0.flush().await?;
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1])?)?;
    claims["nats"]["pub"]["allow"] = serde_json::json!([">"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    );
    let forged = creds_file(dir.path(), "forged", &forged, &user);
    assert_auth_refused(connect(forged).await.map(|_| ()), "tampered JWT");

    // A JWT signed by a key the account does not list.
    let rogue = nkeys::KeyPair::new_account();
    let (foreign, _, _) = issue("foreign", &|_| {}, &rogue);
    assert_auth_refused(connect(foreign).await.map(|_| ()), "foreign signing key");

    // A login JWT used with another user's seed.
    hub.create_user("owner", "pw-owner-123", &["viewer"])
        .await?;
    let owner = hub.login("owner", "pw-owner-123").await?;
    let thief = creds_file(dir.path(), "thief", &owner.jwt, &nkeys::KeyPair::new_user());
    assert_auth_refused(connect(thief).await.map(|_| ()), "JWT with a foreign seed");
    assert!(hub.stop().await?);
    Ok(())
}
