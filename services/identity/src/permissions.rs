//! What each bootstrap user may publish and subscribe to: the first rows of the permission
//! matrix.
//!
//! Least privilege, derived from what each process actually sends (DESIGN.md, "Security
//! model"): a service subscribes to its own subject tree and to `$SRV.>` (micro discovery,
//! ADR-32), and answers requests through `allow_responses` rather than `pub _INBOX.>` — with
//! response permission and no publish allow-list, the server lets a client publish *only* to
//! reply subjects of messages it received, once each, so a service cannot write into other
//! clients' inboxes or publish on any plantd subject. Whatever else a service publishes is
//! listed by subject, and JetStream access is narrowed to the API calls on its own stream.
//!
//! Subjects come from [`plantd_shared::subjects`] where it has builders; JetStream API subjects
//! are spelled here because they are NATS', not plantd's.

use plantd_shared::subjects;

use crate::claims::{Permission, Permissions, ResponsePermission};

/// Replies a service may send per request.
pub const REPLIES_PER_REQUEST: i64 = 1;

/// How long a service may take to answer, in nanoseconds (10 min: the longest `plantd.echo.slow`
/// and any slow state batch finish well within it; the server default is 2 min).
pub const REPLY_WINDOW_NANOS: i64 = 10 * 60 * 1_000_000_000;

/// The inbox prefix async-nats uses for request replies and JetStream acks.
pub const INBOX_ALL: &str = "_INBOX.>";

/// The admin: no restriction at all (empty lists = allow everything).
pub fn admin() -> Permissions {
    Permissions::default()
}

/// The system-account user identity uses to push and verify account JWTs
/// (`$SYS.REQ.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.{UPDATE,LOOKUP}`).
pub fn system_updater() -> Permissions {
    Permissions {
        publish: Permission::allow([
            "$SYS.REQ.CLAIMS.UPDATE",
            "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE",
            "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP",
        ]),
        subscribe: Permission::allow([INBOX_ALL]),
        resp: None,
    }
}

/// Name of the shared login-only user (`creds/login.creds`).
pub const LOGIN_USER: &str = "login";

/// The inbox prefix every login client must use (async-nats `custom_inbox_prefix`): the
/// login-only user may subscribe to nothing else.
pub const LOGIN_INBOX_PREFIX: &str = "_INBOX_login";

/// The login-only credential shared by every `plant login`: it may send a login request and
/// hear replies on `_INBOX_login.>`, nothing else (no JetStream, no discovery). All login
/// clients share it, so each can see the others' replies; that is why the service seals the
/// grant in a login reply to the client's own curve key (docs/identity.md).
pub fn login_only() -> Permissions {
    Permissions {
        publish: Permission::allow([subjects::identity::op("login")]),
        subscribe: Permission::allow([format!("{LOGIN_INBOX_PREFIX}.>")]),
        resp: None,
    }
}

/// Name of the web-api bridge's own user (`creds/web-api.creds`).
pub const WEB_API_USER: &str = "web-api";

/// The web-api bridge's own connection: what [`login_only`] may do (it logs people in the same
/// way, on the same inbox prefix) plus publishing its own log records. Everything it does *for*
/// a person runs on that person's connection, never on this one.
pub fn web_api_bridge() -> Permissions {
    let mut permissions = login_only();
    permissions.publish = Permission::allow([
        subjects::identity::op("login"),
        subjects::log::of_service(WEB_API_USER),
    ]);
    permissions
}

/// The identity service: its endpoints and discovery, replies only. Account updates go
/// through a separate SYS connection ([`system_updater`]), not this user.
pub fn identity_service() -> Permissions {
    service(subjects::identity::SERVICE, &[], false)
}

/// Subject trees that never cross an edge link, in either direction.
///
/// A site runs its own state, buses, echo, metric and logger in the same queue groups as the
/// hub's; across a leaf node a queue group spans both servers, so without this a request at the
/// site could be answered by the hub's state service (or the other way round) whenever the
/// local one is busy or restarting: two truths mixed. Bus traffic does not cross live either:
/// the hub gets a site's telemetry through its sourced streams (lossless, exactly once) and the
/// site gets the hub's commands the same way, filtered to the site (docs/edge.md). Discovery
/// stays local so `plant services` shows one server's instances. What does cross: identity
/// (login and the account JWT from the hub), JetStream API and flow control between domains,
/// replies.
pub const EDGE_LOCAL_ONLY: &[&str] = &[
    "plantd.state.>",
    "plantd.echo.>",
    "plantd.metric.>",
    "plantd.buses.>",
    "plantd.bus.>",
    "plantd.pipe.>",
    "plantd.dlq.>",
    "plantd.logger.>",
    "plantd.log.>",
    "plantd.modules.>",
    "plantd.edge.>",
    "$SRV.>",
    "$KV.>",
    "$PLANTD.>",
];

/// An edge site's leaf-node link: the plantd account minus [`EDGE_LOCAL_ONLY`], usable only as
/// a leaf-node connection (see [`crate::claims::UserNats::allowed_connection_types`]).
pub fn edge_link() -> Permissions {
    let deny = || Permission {
        allow: Vec::new(),
        deny: EDGE_LOCAL_ONLY.iter().map(|s| s.to_string()).collect(),
    };
    Permissions {
        publish: deny(),
        subscribe: deny(),
        resp: None,
    }
}

/// The connection type an edge link's creds are limited to.
pub const LEAFNODE_CONNECTION: &str = "LEAFNODE";

/// The echo module ([`module_service`]).
pub fn echo_service() -> Permissions {
    module_service("echo")
}

/// The module registry bucket (`plantd_shared::module::registry::BUCKET`).
pub const REGISTRY_BUCKET: &str = "plantd-registry";

/// A module built on the SDK (`plantd_shared::module`), named `name`: a service
/// ([`service`]) that also writes its own registry entries (`$KV.plantd-registry.<name>.>`,
/// plain JetStream publishes whose acks reach its inbox: no JetStream API rights) and hears
/// drain requests for its instances (`plantd.modules.drain.<name>.*`, which only admins may
/// send).
pub fn module_service(name: &str) -> Permissions {
    let registry = format!("$KV.{REGISTRY_BUCKET}.{name}.>");
    let mut permissions = service(name, &[&registry], true);
    let mut subscribe = permissions.subscribe.allow.clone();
    subscribe.push(format!("{}.modules.drain.{name}.*", subjects::ROOT));
    permissions.subscribe = Permission::allow(subscribe);
    permissions
}

/// The metric module: a module ([`module_service`]) that also publishes its samples on the
/// data bus under any one-token scope (`plantd.bus.data.*.metric.>`).
pub fn metric_service() -> Permissions {
    let mut permissions = module_service(METRIC_USER);
    let mut publish = permissions.publish.allow.clone();
    publish.push(subjects::bus::topic("data", "*.metric.>"));
    permissions.publish = Permission::allow(publish);
    permissions
}

/// Name of the metric module's user.
pub const METRIC_USER: &str = "metric";

/// The state service: its endpoints, discovery, and the JetStream KV calls its mirror makes on
/// `bucket` (open or create the bucket, publish changes, read the last change per key).
pub fn state_service(bucket: &str) -> Permissions {
    let stream = format!("KV_{bucket}");
    let publish = [
        format!("$KV.{bucket}.>"),
        // create_key_value reads the account's JetStream limits first.
        "$JS.API.INFO".to_string(),
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.STREAM.CREATE.{stream}"),
        // create_or_update_key_value tries an update first (and applies changed settings).
        format!("$JS.API.STREAM.UPDATE.{stream}"),
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}.>"),
        // Watches are created for people (plantd.state.watch): the named, filtered form.
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
    ];
    let publish: Vec<&str> = publish.iter().map(String::as_str).collect();
    // JetStream answers (API replies, publish acks) arrive on the client's inbox.
    service(subjects::state::SERVICE, &publish, true)
}

/// The bus service: its endpoints, discovery, and the JetStream calls on the capture streams
/// of `buses` (create or update them at start, read their state, create replay consumers that
/// deliver inside `$PLANTD.replay.>`).
///
/// Stream names are spelled out per bus: a NATS wildcard is a whole token, so no permission
/// can say "streams whose name starts with PLANTD_BUS_", and `STREAM.UPDATE.*` would let the
/// bus service rewrite the state bucket. A bus added to the bus service's config therefore
/// needs its name here too (docs/buses.md).
///
/// Pipes need no such list: all pipes share the three pipe streams (`subjects::pipe`), and the
/// service may create each pipe's durable consumer on the work-queue stream, read the
/// advisories it captures, copy items into dead letters, delete them, and push retries.
pub fn bus_service(buses: &[&str]) -> Permissions {
    let mut publish = vec!["$JS.API.INFO".to_string()];
    for bus in buses {
        let stream = subjects::bus::stream(bus);
        publish.extend([
            format!("$JS.API.STREAM.INFO.{stream}"),
            format!("$JS.API.STREAM.CREATE.{stream}"),
            format!("$JS.API.STREAM.UPDATE.{stream}"),
            format!("$JS.API.CONSUMER.CREATE.{stream}"),
            format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        ]);
    }
    use subjects::pipe;
    for stream in [pipe::STREAM, pipe::DLQ_STREAM, pipe::ADVISORY_STREAM] {
        publish.extend([
            format!("$JS.API.STREAM.INFO.{stream}"),
            format!("$JS.API.STREAM.CREATE.{stream}"),
            format!("$JS.API.STREAM.UPDATE.{stream}"),
            format!("$JS.API.DIRECT.GET.{stream}"),
            format!("$JS.API.DIRECT.GET.{stream}.>"),
            format!("$JS.API.STREAM.MSG.DELETE.{stream}"),
        ]);
    }
    publish.extend([
        format!("$JS.API.CONSUMER.CREATE.{}.>", pipe::STREAM),
        format!("$JS.API.CONSUMER.INFO.{}.*", pipe::STREAM),
        format!("$JS.API.CONSUMER.CREATE.{}.>", pipe::ADVISORY_STREAM),
        format!(
            "$JS.API.CONSUMER.INFO.{}.{}",
            pipe::ADVISORY_STREAM,
            pipe::ADVISORY_CONSUMER
        ),
        format!(
            "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
            pipe::ADVISORY_STREAM,
            pipe::ADVISORY_CONSUMER
        ),
        format!(
            "$JS.ACK.{}.{}.>",
            pipe::ADVISORY_STREAM,
            pipe::ADVISORY_CONSUMER
        ),
        pipe::every_pipe(),
        pipe::every_dead_letter(),
    ]);
    let publish: Vec<&str> = publish.iter().map(String::as_str).collect();
    service(subjects::bus::SERVICE, &publish, true)
}

/// The logger: its endpoints, its log stream (create or update it, read it for queries with
/// consumers it creates and deletes itself), and nothing broader.
pub fn logger_service() -> Permissions {
    let stream = subjects::log::STREAM;
    let publish = [
        "$JS.API.INFO".to_string(),
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.STREAM.CREATE.{stream}"),
        format!("$JS.API.STREAM.UPDATE.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.INFO.{stream}.*"),
        format!("$JS.API.CONSUMER.DELETE.{stream}.*"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.*"),
    ];
    let publish: Vec<&str> = publish.iter().map(String::as_str).collect();
    service(subjects::log::SERVICE, &publish, true)
}

/// `plantd.<module>.>`.
fn subtree(module: &str) -> String {
    subjects::module_op(module, ">")
}

/// Service `name`: its subtree `plantd.<name>.>` plus `$SRV.>`, `publish` by name, its log
/// records (`plantd.log.<name>.>`), replies via response permission.
///
/// A service may also publish on the subject trees it subscribes to: a draining instance ends
/// its endpoint subscriptions by publishing filler messages there (`micro::service::drain`).
/// That gives it nothing it does not have already: those are the subjects it serves, and
/// whatever it sends there is handled by itself or by another instance of itself.
fn service(name: &str, publish: &[&str], inbox: bool) -> Permissions {
    let mut sub = vec![subtree(name)];
    let mut publish: Vec<String> = publish.iter().map(|s| s.to_string()).collect();
    publish.extend(sub.iter().cloned());
    publish.push(subjects::log::of_service(name));
    sub.push(format!("{}.>", subjects::SRV_PREFIX));
    if inbox {
        sub.push(INBOX_ALL.to_string());
    }
    Permissions {
        publish: Permission::allow(publish),
        subscribe: Permission::allow(sub),
        resp: Some(ResponsePermission {
            max: REPLIES_PER_REQUEST,
            ttl: REPLY_WINDOW_NANOS,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_may_only_hear_its_subjects_and_reply() {
        let p = echo_service();
        assert_eq!(
            p.publish.allow,
            [
                "$KV.plantd-registry.echo.>",
                "plantd.echo.>",
                "plantd.log.echo.>"
            ],
            "its registry entries, replies, drain fillers and its own log records only"
        );
        assert_eq!(
            p.subscribe.allow,
            [
                "plantd.echo.>",
                "$SRV.>",
                "_INBOX.>",
                "plantd.modules.drain.echo.*"
            ]
        );
        assert_eq!(
            p.resp,
            Some(ResponsePermission {
                max: 1,
                ttl: REPLY_WINDOW_NANOS
            })
        );
    }

    #[test]
    fn a_module_writes_only_its_own_registry_entries() {
        let p = module_service("oven");
        assert!(
            p.publish
                .allow
                .contains(&"$KV.plantd-registry.oven.>".to_string())
        );
        assert!(
            p.publish.allow.iter().all(|s| !s.starts_with("$JS.")),
            "no JetStream API rights: {:?}",
            p.publish.allow
        );
        assert!(
            p.subscribe
                .allow
                .contains(&"plantd.modules.drain.oven.*".to_string())
        );
        assert!(
            !p.publish.allow.iter().any(|s| s.contains("modules.drain")),
            "a module cannot drain others"
        );
        let metric = metric_service();
        assert!(
            metric
                .publish
                .allow
                .contains(&"plantd.bus.data.*.metric.>".to_string())
        );
        assert!(
            !metric
                .publish
                .allow
                .iter()
                .any(|s| s == "plantd.bus.data.>"),
            "samples only, not the whole bus"
        );
    }

    #[test]
    fn state_gets_its_bucket_and_nothing_broader() {
        let p = state_service("plantd-state");
        assert_eq!(p.subscribe.allow, ["plantd.state.>", "$SRV.>", "_INBOX.>"]);
        assert!(p.publish.allow.contains(&"$KV.plantd-state.>".to_string()));
        for subject in &p.publish.allow {
            assert!(
                subject == "$JS.API.INFO"
                    || subject == "plantd.state.>"
                    || subject == "plantd.log.state.>"
                    || subject.starts_with("$KV.plantd-state.")
                    || subject.contains("KV_plantd-state"),
                "{subject} is broader than the bucket"
            );
        }
        assert!(p.resp.is_some());
    }

    #[test]
    fn login_only_may_ask_to_log_in_and_hear_its_inbox() {
        let p = login_only();
        assert_eq!(p.publish.allow, ["plantd.identity.login"]);
        let bridge = web_api_bridge();
        assert_eq!(
            bridge.publish.allow,
            ["plantd.identity.login", "plantd.log.web-api.>"],
            "the bridge logs people in and ships its own logs, nothing more"
        );
        assert_eq!(bridge.subscribe.allow, p.subscribe.allow);
        assert!(bridge.resp.is_none());
        assert_eq!(p.subscribe.allow, ["_INBOX_login.>"]);
        assert!(p.resp.is_none());
        let p = identity_service();
        assert_eq!(
            p.publish.allow,
            ["plantd.identity.>", "plantd.log.identity.>"],
            "replies, drain fillers and its own log records only"
        );
        assert_eq!(p.subscribe.allow, ["plantd.identity.>", "$SRV.>"]);
    }

    #[test]
    fn the_bus_service_gets_its_bus_and_pipe_streams_and_nothing_broader() {
        let p = bus_service(&["control", "data"]);
        assert_eq!(p.subscribe.allow, ["plantd.buses.>", "$SRV.>", "_INBOX.>"]);
        for subject in &p.publish.allow {
            assert!(
                subject == "$JS.API.INFO"
                    || subject == "plantd.buses.>"
                    || subject == "plantd.log.buses.>"
                    || subject.contains(".PLANTD_BUS_CONTROL")
                    || subject.contains(".PLANTD_BUS_DATA")
                    || subject.contains(".PLANTD_PIPES.")
                    || subject.ends_with(".PLANTD_PIPES")
                    || subject.contains(".PLANTD_PIPES_DLQ")
                    || subject.contains(".PLANTD_PIPES_ADVISORIES")
                    || subject == "plantd.pipe.>"
                    || subject == "plantd.dlq.*",
                "{subject} is broader than the bus and pipe streams"
            );
        }
        assert!(!p.publish.allow.iter().any(|s| s.starts_with("plantd.bus.")));
    }

    #[test]
    fn the_logger_gets_its_stream_and_its_endpoints() {
        let p = logger_service();
        assert_eq!(p.subscribe.allow, ["plantd.logger.>", "$SRV.>", "_INBOX.>"]);
        for subject in &p.publish.allow {
            assert!(
                subject == "$JS.API.INFO"
                    || subject == "plantd.logger.>"
                    || subject == "plantd.log.logger.>"
                    || subject.contains(".PLANTD_LOG"),
                "{subject} is broader than the log stream"
            );
        }
    }

    #[test]
    fn admin_is_unrestricted_and_updater_is_narrow() {
        assert_eq!(admin(), Permissions::default());
        let p = system_updater();
        assert!(p.publish.allow.iter().all(|s| s.starts_with("$SYS.REQ.")));
    }
}
