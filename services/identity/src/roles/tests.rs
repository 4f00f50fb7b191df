//! Unit tests of the role → permission mapping, checked with the same matcher
//! `check-permission` uses ([`crate::authorize`]).

use super::*;
use crate::authorize::{Action, check};

const BUCKET: &str = "plantd-state";

fn perms(bindings: &[(&str, &str)]) -> Permissions {
    let bindings: Vec<Binding> = bindings
        .iter()
        .map(|(role, scope)| Binding::parse(role, scope).unwrap())
        .collect();
    permissions("alice", &bindings, BUCKET)
}

fn can_pub(p: &Permissions, subject: &str) -> bool {
    check(p, Action::Publish, subject).0
}

fn can_sub(p: &Permissions, subject: &str) -> bool {
    check(p, Action::Subscribe, subject).0
}

#[test]
fn bindings_are_checked_and_normalized() {
    assert_eq!(
        Binding::parse("operator", "site1.>").unwrap(),
        Binding::parse("operator", "site1").unwrap()
    );
    assert_eq!(Binding::parse("viewer", ">").unwrap().scope, "");
    assert_eq!(Binding::parse("viewer", "").unwrap().scope, "");
    let unknown = Binding::parse("root", "").unwrap_err();
    assert_eq!(unknown.code, ErrorCode::BadRequest);
    assert_eq!(unknown.field.as_deref(), Some("role"));
    for bad in ["a..b", "a.*", "a b", "site1.>.x"] {
        let err = Binding::parse("viewer", bad).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("scope"), "{bad}");
    }
    assert!(Binding::parse("admin", "site1").is_err(), "admin is global");
}

#[test]
fn every_person_may_use_identity_and_only_its_own_inbox() {
    let p = perms(&[]);
    for op in ["refresh", "logout", "whoami", "check-permission"] {
        assert!(can_pub(&p, &subjects::identity::op(op)), "{op}");
    }
    assert!(!can_pub(&p, &subjects::identity::op("login")));
    assert!(!can_pub(&p, &subjects::identity::admin("user.create")));
    assert!(can_sub(&p, "_INBOX_alice.abc.def"));
    assert!(!can_sub(&p, "_INBOX_bob.abc"));
    assert!(!can_sub(&p, "_INBOX.abc"));
    assert!(!can_pub(&p, "plantd.state.get.site1"));
    assert!(p.resp.is_none(), "people do not answer requests");
    assert_eq!(inbox_prefix("alice"), "_INBOX_alice");
}

#[test]
fn admin_gets_everything() {
    let p = perms(&[("admin", "")]);
    assert!(can_pub(&p, "plantd.identity.admin.user.create"));
    assert!(can_pub(&p, "$JS.API.STREAM.CREATE.X"));
    assert!(can_sub(&p, ">"));
}

#[test]
fn operator_works_in_its_scope_subtree_only() {
    let p = perms(&[("operator", "site1")]);
    for op in ["get", "set", "delete", "list"] {
        assert!(can_pub(&p, &format!("plantd.state.{op}.site1")), "{op}");
        assert!(
            can_pub(&p, &format!("plantd.state.{op}.site1.line2")),
            "{op}"
        );
        assert!(!can_pub(&p, &format!("plantd.state.{op}.site2")), "{op}");
        assert!(!can_pub(&p, &format!("plantd.state.{op}.site10")), "{op}");
    }
    assert!(can_pub(&p, "plantd.state.scope.create.site1.oven"));
    assert!(can_pub(&p, "plantd.state.scope.delete.site1"));
    assert!(!can_pub(&p, "plantd.state.scope.create.site2"));
    assert!(can_pub(&p, "plantd.state.scope.list"));
    assert!(can_pub(&p, "plantd.bus.control.site1.oven.setpoint"));
    assert!(can_pub(&p, "plantd.bus.control.site1"));
    assert!(!can_pub(&p, "plantd.bus.control.site2.oven.setpoint"));
    assert!(can_sub(&p, "plantd.bus.data.site1.>"));
    assert!(!can_sub(&p, "plantd.bus.>"), "only its scope");
    assert!(can_pub(&p, "$SRV.PING"));
    assert!(
        !can_sub(&p, "$SRV.>"),
        "discovery is asked, not listened to"
    );
    assert!(!can_pub(&p, "plantd.identity.admin.role.assign"));
    assert!(!can_pub(&p, "plantd.echo.echo"));
}

#[test]
fn operator_without_scope_gets_all_state() {
    let p = perms(&[("operator", "")]);
    assert!(can_pub(&p, "plantd.state.set.anywhere.at.all"));
    assert!(can_pub(&p, "plantd.state.scope.delete.x"));
    assert!(can_pub(&p, "plantd.state.watch.x.y"));
    assert!(can_sub(&p, "$PLANTD.watch.x.tok"));
    assert!(
        !can_pub(&p, "$PLANTD.watch.x.tok"),
        "deliveries come from the server"
    );
}

#[test]
fn viewer_reads_and_watches_but_never_writes() {
    let p = perms(&[("viewer", "site1")]);
    assert!(can_pub(&p, "plantd.state.get.site1"));
    assert!(can_pub(&p, "plantd.state.list.site1.line2"));
    assert!(!can_pub(&p, "plantd.state.set.site1"));
    assert!(!can_pub(&p, "plantd.state.delete.site1"));
    assert!(!can_pub(&p, "plantd.state.scope.create.site1"));
    assert!(!can_pub(&p, "plantd.state.get.site2"));
    assert!(
        !can_pub(&p, "plantd.bus.control.site1.x"),
        "viewers only listen"
    );
    assert!(can_sub(&p, "plantd.bus.data.site1.oven.temp"));
    assert!(can_sub(&p, "plantd.bus.*.site1.>"));
    assert!(!can_sub(&p, "plantd.bus.data.site2.oven.temp"));
    assert!(!can_sub(&p, "plantd.bus.data.>"));
}

#[test]
fn replays_are_asked_of_the_bus_service_and_delivered_only_to_readers() {
    let p = perms(&[("viewer", "site1")]);
    assert!(can_pub(&p, "plantd.buses.replay.data.site1"));
    assert!(can_pub(&p, "plantd.buses.replay.data.site1.line2"));
    assert!(!can_pub(&p, "plantd.buses.replay.data.site2"));
    assert!(can_pub(&p, "plantd.buses.info"));
    assert!(can_sub(&p, "$PLANTD.replay.data.site1.tok"));
    assert!(!can_sub(&p, "$PLANTD.replay.data.site2.tok"));
    assert!(!can_pub(&p, "$PLANTD.replay.data.site1.tok"));
    for subject in [
        "$JS.API.CONSUMER.CREATE.PLANTD_BUS_DATA",
        "$JS.API.STREAM.INFO.PLANTD_BUS_DATA",
        "$JS.API.DIRECT.GET.PLANTD_BUS_DATA",
    ] {
        assert!(!can_pub(&p, subject), "{subject}");
    }
    let everywhere = perms(&[("operator", "")]);
    assert!(can_pub(&everywhere, "plantd.bus.control.any.where"));
    assert!(can_sub(&everywhere, "plantd.bus.>"));
    assert!(can_pub(&everywhere, "plantd.buses.replay.event.x"));
    assert!(can_sub(&everywhere, "$PLANTD.replay.event.x.tok"));
}

#[test]
fn pipes_are_pushed_by_unscoped_operators_and_worked_only_by_services() {
    let scoped = perms(&[("operator", "site1")]);
    assert!(can_pub(&scoped, "plantd.buses.pipes"));
    assert!(!can_pub(&scoped, "plantd.pipe.jobs"));
    assert!(!can_pub(&scoped, "plantd.buses.dlq.list.jobs"));
    let viewer = perms(&[("viewer", "")]);
    assert!(can_pub(&viewer, "plantd.buses.dlq.list.jobs"));
    assert!(!can_pub(&viewer, "plantd.buses.dlq.retry.jobs"));
    assert!(!can_pub(&viewer, "plantd.pipe.jobs"));
    let operator = perms(&[("operator", "")]);
    assert!(can_pub(&operator, "plantd.pipe.jobs"));
    assert!(can_pub(&operator, "plantd.buses.dlq.retry.jobs"));
    for p in [&scoped, &viewer, &operator] {
        for subject in [
            "$JS.API.CONSUMER.MSG.NEXT.PLANTD_PIPES.jobs",
            "$JS.API.CONSUMER.INFO.PLANTD_PIPES.jobs",
            "$JS.ACK.PLANTD_PIPES.jobs.1.1.1.1.0",
            "plantd.dlq.jobs",
        ] {
            assert!(!can_pub(p, subject), "{subject}");
        }
    }
}

#[test]
fn logs_are_queried_by_unscoped_roles_only() {
    assert!(can_pub(&perms(&[("viewer", "")]), "plantd.logger.query"));
    assert!(can_pub(&perms(&[("operator", "")]), "plantd.logger.query"));
    let scoped = perms(&[("operator", "site1")]);
    assert!(!can_pub(&scoped, "plantd.logger.query"));
    for p in [&scoped, &perms(&[("viewer", "")])] {
        assert!(
            !can_pub(p, "plantd.log.state.warn"),
            "people do not forge records"
        );
        assert!(!can_sub(p, "plantd.log.>"));
    }
}

#[test]
fn watch_is_asked_of_the_state_service_and_delivered_only_to_readers() {
    let p = perms(&[("viewer", "site1")]);
    assert!(can_pub(&p, "plantd.state.watch.site1"));
    assert!(can_pub(&p, "plantd.state.watch.site1.l2"));
    assert!(!can_pub(&p, "plantd.state.watch.site2"));
    assert!(can_sub(&p, "$PLANTD.watch.site1.tok"));
    assert!(can_sub(&p, "$PLANTD.watch.site1.l2.tok"));
    assert!(!can_sub(&p, "$PLANTD.watch.site2.tok"));
    assert!(
        !can_pub(&p, "$PLANTD.watch.site1.tok"),
        "nobody but the server delivers"
    );
    // A reader of a sub-scope cannot listen to a watch of the scope above it, whatever token.
    let l2 = perms(&[("viewer", "site1.l2")]);
    assert!(can_sub(&l2, "$PLANTD.watch.site1.l2.tok"));
    assert!(!can_sub(&l2, "$PLANTD.watch.site1.l2"));
    assert!(!can_sub(&l2, "$PLANTD.watch.site1.tok"));
}

#[test]
fn people_get_no_jetstream_api_rights() {
    // A push consumer's deliver subject is not checked by the server, and API replies go to
    // any reply subject: either right lets a person make the server publish where it may not.
    for binding in [
        ("viewer", "site1"),
        ("operator", "site1"),
        ("viewer", ""),
        ("operator", ""),
    ] {
        let p = perms(&[binding]);
        for subject in [
            "$JS.API.CONSUMER.CREATE.KV_plantd-state",
            "$JS.API.CONSUMER.CREATE.KV_plantd-state.w1.$KV.plantd-state.site1.>",
            "$JS.API.DIRECT.GET.KV_plantd-state.$KV.plantd-state.site1.k",
            "$JS.API.STREAM.INFO.KV_plantd-state",
            "$JS.FC.KV_plantd-state.x.y",
            "$KV.plantd-state.site1.k",
        ] {
            assert!(!can_pub(&p, subject), "{binding:?} may publish {subject}");
        }
    }
}

#[test]
fn unusual_scopes_are_granted_as_written() {
    let p = perms(&[("viewer", "org.plantd.Service1")]);
    assert!(can_pub(&p, "plantd.state.watch.org.plantd.Service1"));
    assert!(can_sub(&p, "$PLANTD.watch.org.plantd.Service1.t"));
    let p = perms(&[("viewer", "h\u{e4}lle")]);
    assert!(can_sub(&p, "$PLANTD.watch.h\u{e4}lle.t"));
}

#[test]
fn bindings_union() {
    let p = perms(&[("viewer", "site1"), ("operator", "site2")]);
    assert!(can_pub(&p, "plantd.state.get.site1"));
    assert!(!can_pub(&p, "plantd.state.set.site1"));
    assert!(can_pub(&p, "plantd.state.set.site2.x"));
    assert!(
        can_pub(&p, "plantd.bus.control.site2.x"),
        "from the operator binding"
    );
    assert!(!can_pub(&p, "plantd.bus.control.site1.x"));
    let unique: BTreeSet<_> = p.publish.allow.iter().collect();
    assert_eq!(unique.len(), p.publish.allow.len(), "no duplicates");
}
