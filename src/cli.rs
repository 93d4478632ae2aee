//! The command line: every command reads the same configuration as `serve`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::app::{App, AppState, StartError, shutdown_signal};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::domain::organisation::NewOrganisation;
use crate::service::{Ctx, organisations};

#[derive(Debug, Parser)]
#[command(
    name = "mandat",
    version,
    about = "Delegated access for aidants and usagers"
)]
pub struct Cli {
    /// Optional TOML configuration file (same keys as the MANDAT_* variables, lower case).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (applies migrations first unless --no-migrate).
    Serve {
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Register OpenID Connect clients (partner services).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Verify or export the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Rotate keys: a new version for new signatures; older ones kept for verification.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Apply the retention policy (MANDAT_RETENTION_FILE).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Copy the SQLite database to a new file, consistent while the server runs (PostgreSQL:
    /// use pg_dump, see README.md, Operations).
    Backup {
        /// The new file (refused if it exists).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Run a benchmark scenario (see bench/README.md).
    Bench(crate::bench::BenchArgs),
    /// The credential vault's data keys.
    #[command(subcommand)]
    Vault(VaultCommand),
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Re-wrap every data key under the newest vault key-encryption key (resumable: run it
    /// again after an interruption); prints {"kek_version","rewrapped","batches","remaining","unreadable"}.
    Rewrap {
        /// Data keys per transaction.
        #[arg(long, default_value_t = crate::service::vault::REWRAP_BATCH)]
        batch_size: i64,
        /// Stop after this many batches (the next run resumes).
        #[arg(long)]
        max_batches: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a key version; prints {"purpose","version","key_id"?}. `audit`, `vault` and `oidc` in this version.
    Rotate {
        #[arg(value_parser = ["vault", "audit", "oidc", "index"])]
        purpose: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Apply the policy now (also runs hourly inside `serve`); prints what was removed.
    Run {
        /// Report what would be removed and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the whole log; exit 0 and a line starting with "ok" when intact, exit 1 naming
    /// the first bad index otherwise.
    Verify {
        /// A checkpoint held outside the database: a witness file (JSON lines) or one signed note.
        #[arg(long, value_name = "CHECKPOINT_FILE")]
        against: Option<PathBuf>,
    },
    /// Export the log to stdout: JSONL (canonical events) or CSV (French headers).
    Export {
        #[arg(long, value_parser = ["jsonl", "csv"])]
        format: String,
        /// RFC 3339 start (inclusive).
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 end (exclusive).
        #[arg(long)]
        until: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an active account; prints {"id","totp_secret","otpauth_uri"}.
    Create(UserCreate),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("placement").required(true).args(["org", "platform_role"])))]
pub struct UserCreate {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub name: String,
    /// Organisation id (with --role).
    #[arg(long, requires = "role", conflicts_with = "platform_role")]
    pub org: Option<uuid::Uuid>,
    #[arg(long, value_parser = ["aidant", "referent"], requires = "org")]
    pub role: Option<String>,
    #[arg(long, value_parser = ["dpo", "admin"], conflicts_with_all = ["org", "role"])]
    pub platform_role: Option<String>,
    /// Read the password from standard input (one trailing newline is stripped).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a relying party; prints {"client_id","client_secret"?}.
    Create(ClientCreate),
}

#[derive(Debug, Args)]
pub struct ClientCreate {
    #[arg(long)]
    pub name: String,
    /// A redirect URI (exact match); repeat for several (they share one host).
    #[arg(long = "redirect-uri", required = true)]
    pub redirect_uris: Vec<String>,
    /// A post-logout redirect URI for RP-initiated logout; repeatable.
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Comma-separated démarche ids the client may use (default: all).
    #[arg(long, value_delimiter = ',')]
    pub demarches: Option<Vec<String>>,
    /// Client authentication at the token endpoint.
    #[arg(long, default_value = "client_secret_basic", value_parser = ["client_secret_basic", "client_secret_post", "private_key_jwt"])]
    pub auth: String,
    /// The client's public keys as a JWK Set (with --auth private_key_jwt).
    #[arg(long, value_name = "FILE")]
    pub jwks_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organisation; prints {"id": ...}.
    Create(OrgCreate),
}

#[derive(Debug, Args)]
pub struct OrgCreate {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub address: String,
    #[arg(long)]
    pub siret: Option<String>,
    /// Comma-separated démarche ids (default: all).
    #[arg(long, value_delimiter = ',')]
    pub demarches: Option<Vec<String>>,
}

/// What a command ended with: the process exit code.
pub type ExitCode = i32;

pub async fn run(cli: Cli, config: Config) -> Result<ExitCode, StartError> {
    match cli.command {
        Command::Serve { no_migrate } => serve(config, !no_migrate).await,
        Command::Migrate => {
            crate::app::open_store(&config, true).await?.close().await;
            println!("migrations applied");
            Ok(0)
        }
        Command::Audit(cmd) => crate::cli_audit::run(cmd, config).await,
        Command::Keys(cmd) => crate::cli_ops::keys(cmd, config).await,
        Command::Retention(cmd) => crate::cli_ops::retention(cmd, config).await,
        Command::Backup { to } => crate::cli_ops::backup(&to, config).await,
        Command::Bench(args) => crate::bench::run(args, config).await,
        Command::Vault(cmd) => crate::cli_ops::vault(cmd, config).await,
        Command::User(UserCommand::Create(args)) => user_create(config, args).await,
        Command::Client(ClientCommand::Create(args)) => client_create(config, args).await,
        Command::Org(OrgCommand::Create(args)) => {
            let input = match NewOrganisation::parse(
                &args.name,
                &args.address,
                args.siret.as_deref(),
                args.demarches.as_deref(),
            ) {
                Ok(i) => i,
                Err(errors) => {
                    for e in errors {
                        eprintln!("--{}: {}", e.field.replace('_', "-"), e.message);
                    }
                    return Ok(2);
                }
            };
            let state = AppState::new(config, Arc::new(SystemClock), true).await?;
            let org = organisations::create(&state, &Ctx::system(), input)
                .await
                .map_err(|e| StartError::Other(anyhow::anyhow!("{e}")))?;
            state
                .sequencer
                .barrier()
                .await
                .map_err(|e| StartError::Other(e.into()))?;
            println!("{}", serde_json::json!({ "id": org.id }));
            state.store.close().await;
            Ok(0)
        }
    }
}

async fn user_create(config: Config, args: UserCreate) -> Result<ExitCode, StartError> {
    use crate::domain::account::{OrgRole, PlatformRole};
    use crate::service::users::{self, Placement};
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| StartError::Other(e.into()))?;
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line)
        .to_owned();
    let placement = match (
        args.org,
        args.role.as_deref(),
        args.platform_role.as_deref(),
    ) {
        (Some(org), Some(role), None) => Placement::Member {
            organisation: org,
            role: OrgRole::parse(role).unwrap_or(OrgRole::Aidant),
        },
        (None, None, Some("admin")) => Placement::Platform(PlatformRole::Admin),
        (None, None, Some(_)) => Placement::Platform(PlatformRole::Dpo),
        _ => {
            eprintln!("give either --org and --role, or --platform-role");
            return Ok(2);
        }
    };
    let state = AppState::new(config, Arc::new(SystemClock), true).await?;
    let result = users::create(
        &state,
        &args.email,
        &args.name,
        placement,
        secrecy::SecretString::from(password),
    )
    .await;
    let code = match result {
        Ok(created) => {
            state
                .sequencer
                .barrier()
                .await
                .map_err(|e| StartError::Other(e.into()))?;
            println!(
                "{}",
                serde_json::to_string(&created).map_err(|e| StartError::Other(e.into()))?
            );
            0
        }
        Err(crate::error::AppError::Validation(errors)) => {
            for e in errors {
                eprintln!("--{}: {}", e.field.replace('_', "-"), e.message);
            }
            2
        }
        Err(crate::error::AppError::NotFound) => {
            eprintln!("--org: organisation inconnue");
            2
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    };
    state.store.close().await;
    Ok(code)
}

async fn serve(config: Config, migrate: bool) -> Result<ExitCode, StartError> {
    let public_url = config.public_url.clone();
    let app = App::build(config, migrate).await?;
    let addr = app.local_addr();
    tracing::info!(%addr, "listening");
    println!("mandat listening on http://{addr} (public URL {public_url})");
    match crate::service::users::first_admin_link(&app.state).await {
        Ok(Some(link)) => {
            println!("No account yet. Create the first administrator (one-time link): {link}")
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "cannot create the first administrator link"),
    }
    app.run_until(shutdown_signal()).await?;
    Ok(0)
}

async fn client_create(config: Config, args: ClientCreate) -> Result<ExitCode, StartError> {
    use crate::service::oidc::clients::{self, AuthMethod, NewClient};
    let auth = AuthMethod::parse(&args.auth).unwrap_or(AuthMethod::Secret);
    let jwks = match (&args.jwks_file, auth) {
        (Some(path), AuthMethod::PrivateKeyJwt) => match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("client create: cannot read {}: {e}", path.display());
                return Ok(2);
            }
        },
        (None, AuthMethod::PrivateKeyJwt) => {
            eprintln!("client create: --auth private_key_jwt needs --jwks-file");
            return Ok(2);
        }
        (Some(_), AuthMethod::Secret) => {
            eprintln!("client create: --jwks-file goes with --auth private_key_jwt");
            return Ok(2);
        }
        (None, AuthMethod::Secret) => None,
    };
    let state = AppState::new(config, Arc::new(SystemClock), true).await?;
    let input = NewClient {
        name: args.name,
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        demarches: args.demarches.unwrap_or_default(),
        auth,
        jwks,
    };
    let code = match clients::create(&state, None, input).await {
        Ok(created) => {
            state
                .sequencer
                .barrier()
                .await
                .map_err(|e| StartError::Other(anyhow::anyhow!("{e}")))?;
            println!(
                "{}",
                serde_json::to_string(&created)
                    .map_err(|e| StartError::Other(anyhow::anyhow!("{e}")))?
            );
            0
        }
        Err(crate::error::AppError::Validation(errors)) => {
            for e in errors {
                eprintln!("client create: {}: {}", e.field, e.message);
            }
            2
        }
        Err(e) => {
            eprintln!("client create: {e}");
            1
        }
    };
    state.store.close().await;
    Ok(code)
}
