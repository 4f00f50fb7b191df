//! The identity commands of `plant`, end to end, as an operator of a hub uses them:
//! `plant admin init` (writes a set-up once, refuses to overwrite it without `--force`, never
//! prints a seed), `plant up` in operator mode (each service with its own creds, the admin
//! creds printed by absolute path, anonymous clients refused) and with `--no-auth`, the login
//! session (`plant login`, `whoami`, `logout`, with the session used implicitly by other
//! commands), the admin commands (`user`, `role`, `org`, `admin creds`), and a third-party
//! client (nats-py, `tests/python/login_test.py`) using the creds file `plant login` wrote.

mod identity_common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use identity_common::{Hub, known_seeds, plant, seeds_in};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

#[tokio::test]
async fn admin_init_writes_once_refuses_to_overwrite_and_never_prints_seeds() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("UTF-8 temp dir");

    let run = plant(&config, &["admin", "init", "--data-dir", data_arg], None).await?;
    println!("plant admin init:\n{}", run.stdout);
    assert_eq!(run.code, 0, "{run}");
    let auth = data.join("auth");
    for name in [
        "admin", "echo", "metric", "state", "buses", "logger", "identity", "login", "web-api",
        "sys",
    ] {
        let creds = auth.join("creds").join(format!("{name}.creds"));
        assert!(
            run.stdout.contains(&creds.display().to_string()),
            "lists {name}: {run}"
        );
        assert_eq!(mode(&creds), 0o600, "{}", creds.display());
    }
    let seeds = known_seeds(&auth, &[]);
    assert!(seeds.len() >= 12, "six keys and six creds: {seeds:?}");
    let printed = format!("{}{}", run.stdout, run.stderr);
    assert!(
        seeds_in(&printed).is_empty(),
        "a seed was printed:\n{printed}"
    );
    assert!(!printed.contains("eyJ"), "a JWT was printed:\n{printed}");

    let operator = std::fs::read_to_string(auth.join("operator.jwt"))?;
    let again = plant(&config, &["admin", "init", "--data-dir", data_arg], None).await?;
    assert_ne!(again.code, 0, "a second init must refuse: {again}");
    assert!(again.stderr.contains("--force"), "says how: {again}");
    assert_eq!(
        std::fs::read_to_string(auth.join("operator.jwt"))?,
        operator,
        "the refused init left the set-up alone"
    );

    let forced = plant(
        &config,
        &[
            "admin",
            "init",
            "--data-dir",
            data_arg,
            "--force",
            "-o",
            "json",
        ],
        None,
    )
    .await?;
    assert_eq!(forced.code, 0, "{forced}");
    let json: serde_json::Value = serde_json::from_str(&forced.stdout)?;
    assert!(
        json["operator"]
            .as_str()
            .is_some_and(|o| o.starts_with('O')),
        "{json}"
    );
    assert!(
        json["files"].as_array().is_some_and(|f| f.len() > 10),
        "{json}"
    );
    assert_ne!(
        std::fs::read_to_string(auth.join("operator.jwt"))?,
        operator,
        "--force re-keys"
    );
    assert!(seeds_in(&forced.stdout).is_empty(), "{forced}");
    Ok(())
}

#[tokio::test]
async fn plant_up_runs_operator_mode_with_a_creds_file_per_service() -> anyhow::Result<()> {
    let hub = Hub::start(&[]).await?;
    println!("{}", hub.banner);
    assert!(hub.admin_creds.is_absolute(), "{}", hub.banner);
    assert!(hub.admin_creds.is_file(), "{}", hub.banner);
    assert!(hub.banner.contains("auth     created"), "{}", hub.banner);
    let scratch = tempfile::tempdir()?;

    // Anonymous clients are refused at connect, with a hint.
    let anon = hub.plant(scratch.path(), &["scope", "list"], None).await?;
    assert_eq!(anon.code, 3, "{anon}");
    assert!(anon.stderr.contains("requires credentials"), "{anon}");

    // The admin may do anything.
    hub.admin(&["scope", "create", "site1"], None).await?;
    hub.admin(&["state", "set", "site1", "temp", "21"], None)
        .await?;
    let got = hub
        .admin(&["state", "get", "site1", "temp", "-o", "json"], None)
        .await?;
    let got: serde_json::Value = serde_json::from_str(&got)?;
    assert_eq!(got["value"], "21", "{got}");

    // A service's creds are least privilege: echo's cannot use state.
    let echo = hub.creds("echo");
    let run = hub
        .plant(
            scratch.path(),
            &[
                "--creds",
                echo.to_str().expect("UTF-8"),
                "--timeout",
                "1s",
                "state",
                "get",
                "site1",
                "temp",
            ],
            None,
        )
        .await?;
    assert_eq!(run.code, 6, "refused at once, not a timeout: {run}");
    assert!(run.stderr.contains("Permissions Violation"), "{run}");

    // Each service process was given its own creds file.
    for line in hub.banner.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [name, "pid", pid, ..] = words.as_slice() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let creds = hub.creds(name);
            assert!(
                cmdline.contains(&format!("nats_creds={}", creds.display())),
                "{name}: {cmdline}"
            );
        }
    }
    assert!(hub.stop().await?, "plant up exits 0 on SIGINT");
    Ok(())
}

#[tokio::test]
async fn plant_up_no_auth_keeps_the_open_server() -> anyhow::Result<()> {
    let hub = Hub::start(&["--no-auth"]).await?;
    assert!(hub.banner.contains("auth     none"), "{}", hub.banner);
    assert!(!hub.auth_dir().exists(), "no set-up is created");
    assert!(!hub.banner.contains("identity"), "{}", hub.banner);
    let scratch = tempfile::tempdir()?;
    let run = hub.plant(scratch.path(), &["scope", "list"], None).await?;
    assert_eq!(run.code, 0, "{run}");
    assert!(hub.stop().await?);
    Ok(())
}

#[tokio::test]
async fn login_whoami_logout_and_the_admin_commands() -> anyhow::Result<()> {
    let hub = Hub::start(&[]).await?;
    hub.admin(&["scope", "create", "site1"], None).await?;
    hub.admin(&["state", "set", "site1", "k", "v1"], None)
        .await?;

    // Organizations.
    hub.admin(&["org", "create", "acme"], None).await?;
    let org: serde_json::Value = serde_json::from_str(
        &hub.admin(&["org", "get", "acme", "-o", "json"], None)
            .await?,
    )?;
    assert_eq!(org["name"], "acme", "{org}");
    let orgs = hub.admin(&["org", "list"], None).await?;
    assert!(orgs.contains("acme"), "{orgs}");

    // Users and roles.
    let password = "correct horse battery";
    hub.admin(
        &[
            "user",
            "create",
            "alice",
            "--org",
            "acme",
            "--role",
            "viewer@site1.>",
            "--password-stdin",
        ],
        Some(&format!("{password}\n")),
    )
    .await?;
    let users: serde_json::Value =
        serde_json::from_str(&hub.admin(&["user", "list", "-o", "json"], None).await?)?;
    let alice = users
        .as_array()
        .and_then(|u| u.iter().find(|u| u["username"] == "alice"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(alice["org"], "acme", "{users}");
    assert_eq!(alice["roles"][0]["role"], "viewer", "{users}");
    let table = hub
        .admin(
            &["role", "assign", "alice", "operator", "--scope", "site2"],
            None,
        )
        .await?;
    assert!(table.contains("operator@site2"), "{table}");
    let table = hub
        .admin(
            &["role", "unassign", "alice", "operator", "--scope", "site2"],
            None,
        )
        .await?;
    assert!(!table.contains("operator@site2"), "{table}");

    // A wrong password writes nothing.
    let config = tempfile::tempdir()?;
    let data = hub.data_dir.to_str().expect("UTF-8");
    let wrong = hub
        .plant(
            config.path(),
            &["login", "alice", "--password-stdin", "--data-dir", data],
            Some("not the password\n"),
        )
        .await?;
    assert_ne!(wrong.code, 0, "{wrong}");
    assert!(!config.path().join("user.creds").exists());

    // Login, then every command uses the session without --creds.
    let login = hub
        .plant(
            config.path(),
            &["login", "alice", "--password-stdin", "--data-dir", data],
            Some(&format!("{password}\n")),
        )
        .await?;
    println!("plant login:\n{}", login.stdout);
    assert_eq!(login.code, 0, "{login}");
    assert!(!format!("{}{}", login.stdout, login.stderr).contains(password));
    let creds = config.path().join("user.creds");
    assert_eq!(mode(&creds), 0o600);
    assert_eq!(mode(&config.path().join("user.json")), 0o600);
    let whoami = hub
        .plant(config.path(), &["whoami", "-o", "json"], None)
        .await?;
    assert_eq!(whoami.code, 0, "{whoami}");
    let me: serde_json::Value = serde_json::from_str(&whoami.stdout)?;
    assert_eq!(me["username"], "alice", "{me}");
    assert_eq!(me["inbox_prefix"], "_INBOX_alice", "{me}");
    let get = hub
        .plant(config.path(), &["state", "get", "site1", "k"], None)
        .await?;
    assert_eq!(get.code, 0, "a viewer of site1 reads it: {get}");
    assert!(get.stdout.contains("v1"), "{get}");
    let set = hub
        .plant(
            config.path(),
            &["--timeout", "1s", "state", "set", "site1", "k", "v2"],
            None,
        )
        .await?;
    assert_eq!(set.code, 6, "a viewer cannot write: {set}");
    assert!(set.stderr.contains("Permissions Violation"), "{set}");
    let denied = hub
        .plant(config.path(), &["--timeout", "1s", "user", "list"], None)
        .await?;
    assert_ne!(denied.code, 0, "a viewer is no admin: {denied}");

    // Logout revokes: the kept copy of the creds no longer connects.
    let kept = config.path().join("kept.creds");
    std::fs::copy(&creds, &kept)?;
    let logout = hub.plant(config.path(), &["logout"], None).await?;
    assert_eq!(logout.code, 0, "{logout}");
    assert!(logout.stdout.contains("true"), "revoked: {logout}");
    assert!(!creds.exists() && !config.path().join("user.json").exists());
    let after = hub.plant(config.path(), &["whoami"], None).await?;
    assert_ne!(after.code, 0, "{after}");
    let kept_arg = kept.to_str().expect("UTF-8");
    let revoked = hub
        .plant(config.path(), &["--creds", kept_arg, "scope", "list"], None)
        .await?;
    assert_eq!(
        revoked.code, 3,
        "a revoked JWT is refused at connect: {revoked}"
    );

    // Update, then delete.
    let disabled = hub
        .admin(&["user", "update", "alice", "--disable"], None)
        .await?;
    assert!(disabled.contains("disabled"), "{disabled}");
    let relogin = hub
        .plant(
            config.path(),
            &["login", "alice", "--password-stdin", "--data-dir", data],
            Some(&format!("{password}\n")),
        )
        .await?;
    assert_ne!(relogin.code, 0, "a disabled user cannot log in: {relogin}");
    let deleted: serde_json::Value = serde_json::from_str(
        &hub.admin(&["user", "delete", "alice", "-o", "json"], None)
            .await?,
    )?;
    assert_eq!(deleted["existed"], true, "{deleted}");

    // Service creds from the identity service.
    let file = config.path().join("echo2.creds");
    let file_arg = file.to_str().expect("UTF-8");
    let out = hub
        .admin(&["admin", "creds", "echo", "-f", file_arg], None)
        .await?;
    assert!(out.contains(file_arg), "{out}");
    assert_eq!(mode(&file), 0o600);
    assert!(seeds_in(&out).is_empty(), "{out}");
    let (client, _) = identity_common::connect_with_events(&hub.url, &file, None).await?;
    client.flush().await?;
    let again = hub
        .plant(
            config.path(),
            &[
                "--creds",
                hub.admin_creds.to_str().expect("UTF-8"),
                "admin",
                "creds",
                "echo",
                "-f",
                file_arg,
            ],
            None,
        )
        .await?;
    assert_ne!(
        again.code, 0,
        "an existing file is not replaced without --force: {again}"
    );
    assert!(hub.stop().await?);
    Ok(())
}

#[tokio::test]
async fn nats_py_uses_the_creds_file_plant_login_wrote() -> anyhow::Result<()> {
    let hub = Hub::start(&[]).await?;
    hub.admin(&["scope", "create", "site1"], None).await?;
    hub.admin(&["state", "set", "site1", "greeting", "hello"], None)
        .await?;
    let password = "py-password-123";
    hub.create_user("pyuser", password, &["viewer@site1"])
        .await?;
    let stdout = run_person_script(
        &hub,
        "login_test.py",
        "pyuser",
        password,
        &["--scope", "site1", "--key", "greeting"],
        "all login checks passed",
    )
    .await?;
    assert!(stdout.contains("all login checks passed"), "{stdout}");
    assert!(hub.stop().await?);
    Ok(())
}

/// The confused-deputy attack of issue #9 with nats-py: no consumer, direct get or reflected
/// reply makes anything land on `plantd.state.set.site2` (or another inbox) that is applied,
/// and the legitimate watch through the state service works.
#[tokio::test]
async fn nats_py_cannot_make_the_server_deliver_where_it_may_not_publish() -> anyhow::Result<()> {
    let hub = Hub::start(&[]).await?;
    for scope in ["site1", "site2"] {
        hub.admin(&["scope", "create", scope], None).await?;
        hub.admin(&["state", "set", scope, "k", &format!("v-{scope}")], None)
            .await?;
    }
    let password = "py-attacker-123";
    hub.create_user("mallory", password, &["operator@site1"])
        .await?;
    let admin_creds = hub.admin_creds.to_str().expect("UTF-8").to_owned();
    let stdout = run_person_script(
        &hub,
        "watch_attack_test.py",
        "mallory",
        password,
        &["--admin-creds", &admin_creds],
        "all attack checks passed",
    )
    .await?;
    assert!(stdout.contains("all attack checks passed"), "{stdout}");
    assert!(hub.stop().await?);
    Ok(())
}

/// Runs `tests/python/<script>` for `user` (password in the environment, not argv) against
/// the hub, with `extra` arguments, and asserts it printed `passed`; returns its stdout.
async fn run_person_script(
    hub: &Hub,
    script: &str,
    user: &str,
    password: &str,
    extra: &[&str],
    passed: &str,
) -> anyhow::Result<String> {
    let plant_bin = plantd_tests::bin_path("plant");
    let data = hub.data_dir.to_str().expect("UTF-8").to_owned();
    let mut args = vec![
        "--plant",
        plant_bin.to_str().expect("UTF-8"),
        "--server",
        &hub.url,
        "--data-dir",
        &data,
        "--user",
        user,
    ];
    args.extend_from_slice(extra);
    plantd_tests::python::run_script(
        script,
        &args,
        &[("PLANTD_TEST_PASSWORD", password)],
        Duration::from_secs(90),
        passed,
        &[],
    )
    .await
}
