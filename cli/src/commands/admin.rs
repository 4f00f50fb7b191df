//! `plant admin init|creds`: creating a hub's trust chain, and long-lived creds for services.
//!
//! `init` runs the identity bootstrap (`plantd_identity::init`) into `<data-dir>/auth`: the
//! operator, the SYS and plantd accounts, their signing keys, the bootstrap creds and the
//! nats-server snippet. It refuses to replace an existing set-up unless `--force` (that re-keys
//! the whole deployment: every issued creds file stops working), and prints what it wrote —
//! paths and public keys, never a seed. `plant up` does the same on first run.
//!
//! `creds` asks the identity service (`plantd.identity.admin.creds`, admin only by subject
//! permission) for a service's or edge link's creds and writes them to a new 0600 file; the
//! output names the file and the public key, the secret stays in the file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use plantd_identity::bootstrap::{AUTH_DIR, Bootstrap, BootstrapError};
use plantd_schemas::identity::v1::{ServiceCredsRequest, ServiceCredsResponse};
use plantd_shared::{call, codec::Encoding, subjects};
use serde::Serialize;

use crate::{context::GlobalArgs, identity_client, output};

/// Arguments of `plant admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Create the operator, accounts, signing keys and bootstrap creds in <data-dir>/auth.
    Init {
        /// The hub's data dir (as for `plant up`).
        #[arg(long, env = "PLANTD_DATA_DIR", default_value = ".plantd")]
        data_dir: PathBuf,
        /// Replace an existing set-up (re-keys everything; issued creds stop working).
        #[arg(long)]
        force: bool,
    },
    /// Get long-lived, revocable creds for a service or edge link from the identity service.
    Creds {
        /// Service name (`echo`, `state`, …) or edge site name.
        name: String,
        /// Permissions preset: the service's own name (default: NAME), `module` (a module of
        /// your own, scoped to NAME) or `edge`.
        #[arg(long)]
        kind: Option<String>,
        /// Where to write the creds (mode 0600); `-` writes them to stdout.
        /// Default: `<NAME>.creds` in the current directory.
        #[arg(long, short = 'f', value_name = "FILE")]
        file: Option<PathBuf>,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// One file `init` wrote.
#[derive(Debug, Serialize)]
struct WrittenFile {
    what: String,
    path: String,
    secret: bool,
}

/// `init` output.
#[derive(Debug, Serialize)]
struct InitOutput {
    auth_dir: String,
    operator: String,
    system_account: String,
    plantd_account: String,
    files: Vec<WrittenFile>,
}

/// `creds` output.
#[derive(Debug, Serialize)]
struct CredsOutput {
    name: String,
    kind: String,
    public_key: String,
    file: String,
}

impl AdminArgs {
    /// Runs the verb and prints its result.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        match self.verb {
            Verb::Init { data_dir, force } => init(global, out, data_dir, force),
            Verb::Creds {
                name,
                kind,
                file,
                force,
            } => {
                let kind = kind.unwrap_or_else(|| name.clone());
                creds(global, out, name, kind, file, force).await
            }
        }
    }
}

fn init(
    global: &GlobalArgs,
    out: &mut dyn Write,
    data_dir: PathBuf,
    force: bool,
) -> anyhow::Result<()> {
    let setup = plantd_identity::init(&data_dir, force).map_err(|err| match err {
        BootstrapError::AlreadyInitialized { path } => anyhow::anyhow!(
            "{} already holds an identity set-up; pass --force to replace it (this re-keys \
             the whole deployment: every issued creds file stops working)",
            path.display()
        ),
        other => anyhow::Error::new(other).context("cannot create the identity set-up"),
    })?;
    let output = init_output(&setup)?;
    match global.output {
        output::OutputFormat::Json => output::render(out, global.output, &output, &[], vec![])?,
        output::OutputFormat::Table => {
            writeln!(out, "operator        {}", output.operator)?;
            writeln!(out, "account SYS     {}", output.system_account)?;
            writeln!(out, "account plantd  {}", output.plantd_account)?;
            writeln!(out)?;
            let rows = output
                .files
                .iter()
                .map(|f| {
                    let secret = if f.secret { "yes (0600)" } else { "no" };
                    vec![f.what.clone(), f.path.clone(), secret.to_string()]
                })
                .collect::<Vec<_>>();
            output::table(out, &["WHAT", "PATH", "SECRET"], &rows)?;
            writeln!(out)?;
            let keys = setup.auth_dir.join("keys");
            writeln!(
                out,
                "{} hold the operator and account identity seeds, needed only to re-key: \
                 take them offline. The signing seeds stay for the identity service.\n\
                 Start the hub with `plant up --data-dir {}`.",
                ["operator.nk", "sys.nk", "plantd.nk"]
                    .map(|k| keys.join(k).display().to_string())
                    .join(", "),
                data_dir.display()
            )?;
        }
    }
    Ok(())
}

/// What `init` wrote: every file under the set-up, listed from disk (so creds added to the
/// bootstrap later show up too), without content.
fn init_output(setup: &Bootstrap) -> anyhow::Result<InitOutput> {
    let mut files = vec![
        WrittenFile {
            what: "operator JWT".into(),
            path: setup.operator_jwt.display().to_string(),
            secret: false,
        },
        WrittenFile {
            what: "account JWT SYS".into(),
            path: setup.system_account.jwt_path.display().to_string(),
            secret: false,
        },
        WrittenFile {
            what: "account JWT plantd".into(),
            path: setup.plantd_account.jwt_path.display().to_string(),
            secret: false,
        },
        WrittenFile {
            what: "nats-server snippet".into(),
            path: setup.server_config.display().to_string(),
            secret: false,
        },
        WrittenFile {
            what: "resolver store".into(),
            path: format!("{}/", setup.resolver_dir.display()),
            secret: false,
        },
    ];
    for (dir, what) in [("keys", "seed"), ("creds", "creds")] {
        for path in sorted_files(&setup.auth_dir.join(dir))? {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push(WrittenFile {
                what: format!("{what} {name}"),
                path: path.display().to_string(),
                secret: true,
            });
        }
    }
    Ok(InitOutput {
        auth_dir: setup.auth_dir.display().to_string(),
        operator: setup.operator.clone(),
        system_account: setup.system_account.public_key.clone(),
        plantd_account: setup.plantd_account.public_key.clone(),
        files,
    })
}

fn sorted_files(dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

async fn creds(
    global: &GlobalArgs,
    out: &mut dyn Write,
    name: String,
    kind: String,
    file: Option<PathBuf>,
    force: bool,
) -> anyhow::Result<()> {
    let file = file.unwrap_or_else(|| PathBuf::from(format!("{name}.creds")));
    let to_stdout = file.as_os_str() == "-";
    if !to_stdout && !force && file.symlink_metadata().is_ok() {
        anyhow::bail!("{} exists; pass --force to replace it", file.display());
    }
    let client = global.connect().await?;
    let reply: ServiceCredsResponse = call::request(
        &client,
        &subjects::identity::admin("creds"),
        &ServiceCredsRequest {
            name: name.clone(),
            kind: kind.clone(),
        },
        Encoding::Protobuf,
        global.timeout,
    )
    .await
    .with_context(|| format!("cannot get creds for {name:?} (kind {kind:?})"))?;
    if to_stdout {
        out.write_all(reply.creds.as_bytes())?;
        eprintln!(
            "creds for {name} ({}) written to stdout: keep them secret",
            reply.public_key
        );
        return Ok(());
    }
    identity_client::write_new_private(&file, reply.creds.as_bytes(), force)?;
    let file = std::path::absolute(&file).unwrap_or(file);
    let output = CredsOutput {
        name,
        kind,
        public_key: reply.public_key,
        file: file.display().to_string(),
    };
    let row = vec![
        output.name.clone(),
        output.kind.clone(),
        output.public_key.clone(),
        output.file.clone(),
    ];
    output::render(
        out,
        global.output,
        &output,
        &["NAME", "KIND", "PUBLIC KEY", "FILE"],
        vec![row],
    )?;
    Ok(())
}

/// The `auth` dir of a data dir.
pub fn auth_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join(AUTH_DIR)
}
