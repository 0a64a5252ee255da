//! `tributary-local` command line: wiring only; the behaviour lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tributary_local::{bind, local_services, local_sign_in, KeySource};

#[derive(Parser)]
#[command(
    name = "tributary-local",
    version,
    about = "Tributary on one machine, no AWS account needed"
)]
struct Cli {
    /// Where the store, queue and dev signing key live.
    #[arg(
        long,
        env = "TRIBUTARY_DATA_DIR",
        default_value = ".tributary",
        global = true
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every HTTP function on one port.
    Serve {
        #[arg(long, env = "TRIBUTARY_LOCAL_ADDR", default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user with a password (read from stdin with --password-stdin).
    Create(CreateUser),
}

#[derive(Args)]
struct CreateUser {
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: String,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password")]
    password_stdin: bool,
    /// The password (prefer --password-stdin: arguments end up in shell history).
    #[arg(long, env = "TRIBUTARY_USER_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve { addr } => serve(&cli.data_dir, addr).await,
        Command::User {
            command: UserCommand::Create(args),
        } => create_user(&cli.data_dir, args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(data_dir: &std::path::Path, addr: SocketAddr) -> Result<(), Failure> {
    let (services, key_source) = local_services(data_dir)?;
    match key_source {
        KeySource::Generated(path) => println!(
            "generated a dev session signing key at {} (set TRIBUTARY_JWT_SECRET to use your own)",
            path.display()
        ),
        KeySource::Existing(path) => {
            println!("using the dev session signing key at {}", path.display())
        }
        KeySource::Environment => {
            println!("using the session signing key from TRIBUTARY_JWT_SECRET")
        }
    }
    let sign_in = local_sign_in(&services)?;
    let (bound, server) = bind(services, sign_in, addr).await?;
    println!("data in {}", data_dir.display());
    println!("tributary-local listening on http://{bound}");
    tokio::select! {
        result = server => result?,
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    Ok(())
}

async fn create_user(data_dir: &std::path::Path, args: CreateUser) -> Result<(), Failure> {
    let password = match (args.password_stdin, args.password) {
        (true, _) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
        (false, Some(password)) => password,
        (false, None) => return Err("give --password-stdin (or --password)".into()),
    };
    let (services, _) = local_services(data_dir)?;
    let user = auth::register_user(&services, &args.email, &args.name, password)
        .await
        .map_err(|error| format!("{} ({})", error.message, error.code))?;
    println!("created user {} <{}>", user.id, user.email);
    Ok(())
}
