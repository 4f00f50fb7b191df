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
    assert!(can_pub(&p, "plantd.bus.alarms.site1"));
    assert!(can_sub(&p, "plantd.bus.>"));
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
    assert!(can_pub(
        &p,
        "$JS.API.CONSUMER.CREATE.KV_plantd-state.w1.$KV.plantd-state.x.>"
    ));
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
    assert!(!can_pub(&p, "plantd.bus.alarms"), "viewers only listen");
    assert!(can_sub(&p, "plantd.bus.alarms"));
}

#[test]
fn kv_watch_is_limited_to_the_scope() {
    let p = perms(&[("viewer", "site1")]);
    let create = "$JS.API.CONSUMER.CREATE.KV_plantd-state";
    assert!(can_pub(&p, "$JS.API.STREAM.INFO.KV_plantd-state"));
    assert!(can_pub(
        &p,
        &format!("{create}.w1.$KV.plantd-state.site1.*")
    ));
    assert!(can_pub(
        &p,
        &format!("{create}.w1.$KV.plantd-state.site1.>")
    ));
    assert!(can_pub(
        &p,
        &format!("{create}.w1.$KV.plantd-state.site1.l2.>")
    ));
    assert!(!can_pub(
        &p,
        &format!("{create}.w1.$KV.plantd-state.site2.>")
    ));
    assert!(!can_pub(&p, &format!("{create}.w1.$KV.plantd-state.>")));
    assert!(!can_pub(&p, create), "the unnamed form carries no filter");
    assert!(can_pub(
        &p,
        "$JS.API.DIRECT.GET.KV_plantd-state.$KV.plantd-state.site1.k"
    ));
    assert!(!can_pub(
        &p,
        "$JS.API.DIRECT.GET.KV_plantd-state.$KV.plantd-state.site2.k"
    ));
    assert!(!can_pub(&p, "$JS.API.STREAM.INFO.KV_other"));
    assert!(!can_pub(&p, "$KV.plantd-state.site1.k"), "no direct writes");
}

#[test]
fn scopes_are_encoded_like_kv_keys() {
    // A scope token outside [A-Za-z0-9_/-] is escaped in KV keys; the grant must follow.
    let p = perms(&[("viewer", "org.plantd.Service1")]);
    assert!(can_pub(
        &p,
        "$JS.API.CONSUMER.CREATE.KV_plantd-state.w.$KV.plantd-state.org.plantd.Service1.*"
    ));
    let p = perms(&[("viewer", "h\u{e4}lle")]);
    let encoded = plantd_state::kvkey::subtree_filter("h\u{e4}lle");
    assert!(encoded.contains('='), "{encoded}");
    assert!(can_pub(
        &p,
        &format!("$JS.API.DIRECT.GET.KV_plantd-state.$KV.plantd-state.{encoded}")
    ));
}

#[test]
fn bindings_union() {
    let p = perms(&[("viewer", "site1"), ("operator", "site2")]);
    assert!(can_pub(&p, "plantd.state.get.site1"));
    assert!(!can_pub(&p, "plantd.state.set.site1"));
    assert!(can_pub(&p, "plantd.state.set.site2.x"));
    assert!(can_pub(&p, "plantd.bus.x"), "from the operator binding");
    let unique: BTreeSet<_> = p.publish.allow.iter().collect();
    assert_eq!(unique.len(), p.publish.allow.len(), "no duplicates");
}
