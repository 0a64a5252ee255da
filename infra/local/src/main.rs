//! `tributary-local` command line: wiring only; the behaviour lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tributary::crawl::job::CrawlRequest;
use tributary::sinks::SinkRequest;
use tributary::store::crawls::CrawlJob;
use tributary_local::crawl::{
    crawl_until_done, local_engine, local_operator, spawn_sweeper, spawn_workers,
};
use tributary_local::scaffold;
use tributary_local::sync::{local_sync_engine, spawn_scheduler, spawn_sync_workers};
use tributary_local::{
    local_integrations, local_mail, local_services, local_sign_in, serve_on, Engines, KeySource,
};

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
    /// Let crawls and scrapes fetch loopback and private addresses (local sites, tests).
    /// Off by default: the SSRF guard refuses them.
    #[arg(long, env = "TRIBUTARY_ALLOW_PRIVATE_NETWORKS", global = true)]
    allow_private_networks: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every HTTP function on one port.
    Serve {
        #[arg(long, env = "TRIBUTARY_LOCAL_ADDR", default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Crawl workers consuming the embedded queue.
        #[arg(long, default_value_t = 4)]
        workers: usize,
    },
    /// Crawl a website into markdown files, through the same handlers as the cloud.
    Crawl(CrawlArgs),
    /// Manage connectors (Jira, Confluence).
    Connectors {
        #[command(subcommand)]
        command: ConnectorCommand,
    },
    /// Run a connector's sync now, in this process, with a progress bar.
    Sync { connector_id: String },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Scaffold a new source: its connector folder, registry line, sync-<name> function,
    /// template.yaml resources and a fake-server test that passes.
    NewSource(NewSourceArgs),
    /// Render template.yaml's per-source sections from the source registry.
    GenTemplate {
        /// Fail (without writing) when template.yaml is not the generated one.
        #[arg(long)]
        check: bool,
        /// The repository (default: the nearest directory up with a template.yaml).
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

#[derive(Args)]
struct NewSourceArgs {
    /// snake_case or kebab-case, e.g. `acme_wiki`.
    name: String,
    /// For people (default: from the name, e.g. "Acme Wiki").
    #[arg(long)]
    title: Option<String>,
    /// The provider connection preset it authorises with (google, microsoft, slack, ...).
    #[arg(long)]
    provider: Option<String>,
    /// The repository (default: the nearest directory up with a template.yaml).
    #[arg(long)]
    root: Option<PathBuf>,
}

#[derive(Args)]
struct CrawlArgs {
    /// Where the crawl starts.
    url: String,
    /// Directory for the markdown files (one per page, with front matter).
    #[arg(long)]
    out: PathBuf,
    /// Most pages to crawl.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// Most links to follow from the start page.
    #[arg(long, default_value_t = 10)]
    depth: i64,
    /// Only paths matching one of these regular expressions (repeatable).
    #[arg(long)]
    include: Vec<String>,
    /// Never paths matching one of these regular expressions (repeatable).
    #[arg(long)]
    exclude: Vec<String>,
    #[arg(long)]
    allow_subdomains: bool,
    #[arg(long)]
    allow_external: bool,
    #[arg(long)]
    ignore_sitemap: bool,
    #[arg(long)]
    ignore_query_params: bool,
    /// Keep navigation, headers and footers in the markdown.
    #[arg(long)]
    full_page: bool,
    /// Pages fetched at once.
    #[arg(long, default_value_t = 8)]
    workers: usize,
}

#[derive(Subcommand)]
enum ConnectorCommand {
    /// Create a connector from a JSON file shaped like the `POST /connectors` body.
    Create {
        #[arg(long)]
        file: PathBuf,
        /// The workspace (tenant) that owns it; a user's id for their own workspace.
        #[arg(long, default_value = "local")]
        workspace: String,
    },
    /// List a workspace's connectors.
    List {
        #[arg(long, default_value = "local")]
        workspace: String,
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

fn main() -> std::process::ExitCode {
    // Before the runtime starts its threads: they pick their malloc arenas on first use.
    tributary_local::allocator::tune();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve { addr, workers } => {
            serve(&cli.data_dir, addr, workers, cli.allow_private_networks).await
        }
        Command::Crawl(args) => crawl(&cli.data_dir, args, cli.allow_private_networks).await,
        Command::Connectors { command } => {
            connectors(&cli.data_dir, command, cli.allow_private_networks).await
        }
        Command::Sync { connector_id } => {
            sync(&cli.data_dir, &connector_id, cli.allow_private_networks).await
        }
        Command::User {
            command: UserCommand::Create(args),
        } => create_user(&cli.data_dir, args).await,
        Command::NewSource(args) => new_source(args),
        Command::GenTemplate { check, root } => gen_template(root, check),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(
    data_dir: &std::path::Path,
    addr: SocketAddr,
    workers: usize,
    allow_private_networks: bool,
) -> Result<(), Failure> {
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
    let (engine, queue) = local_engine(&services, data_dir, allow_private_networks)?;
    let workers = spawn_workers(engine.clone(), queue, workers);
    let stall_after = tributary::crawl::setup::stall_after_from_env()?;
    let _sweeper = spawn_sweeper(
        engine.clone(),
        std::time::Duration::from_secs(60),
        stall_after,
    );
    let (syncs, sync_queue) = local_sync_engine(&services, data_dir, allow_private_networks)?;
    let syncs = std::sync::Arc::new(syncs);
    let _sync_workers = spawn_sync_workers(syncs.clone(), sync_queue, 2);
    let _scheduler = spawn_scheduler(syncs.clone(), std::time::Duration::from_secs(60));
    let engines = Engines {
        crawls: engine,
        syncs,
        integrations: local_integrations(&services, data_dir)?,
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let public_url = format!("http://{}", listener.local_addr()?);
    let services = services.with_mail(local_mail(data_dir, &public_url)?);
    let (bound, server) = serve_on(listener, services, sign_in, engines)?;
    println!("data in {}", data_dir.display());
    println!("tributary-local listening on http://{bound}");
    let served = tokio::select! {
        result = server => result,
        _ = tokio::signal::ctrl_c() => {
            println!("stopping");
            Ok(())
        }
    };
    // Pages in flight go back on the queue, visible at once to the next run.
    workers.stop().await;
    served?;
    Ok(())
}

fn new_source(args: NewSourceArgs) -> Result<(), Failure> {
    let root = scaffold::repository_root(args.root)?;
    let request = scaffold::NewSource {
        name: args.name,
        title: args.title,
        provider: args.provider,
    };
    let done = scaffold::new_source(&root, &request)?;
    for path in &done.created {
        println!("created {}", path.display());
    }
    for path in &done.edited {
        println!("edited  {}", path.display());
    }
    println!("{}", scaffold::next_steps(&done));
    Ok(())
}

fn gen_template(root: Option<PathBuf>, check: bool) -> Result<(), Failure> {
    let root = scaffold::repository_root(root)?;
    let unchanged = scaffold::gen_template(&root, check)?;
    match unchanged {
        true => println!("template.yaml is up to date"),
        false => println!("template.yaml regenerated"),
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

async fn crawl(
    data_dir: &std::path::Path,
    args: CrawlArgs,
    allow_private_networks: bool,
) -> Result<(), Failure> {
    let (services, _) = local_services(data_dir)?;
    let (engine, queue) = local_engine(&services, data_dir, allow_private_networks)?;
    let out = std::path::absolute(&args.out)?;
    let request = CrawlRequest {
        url: args.url,
        limit: Some(args.limit),
        max_depth: Some(args.depth),
        include_paths: args.include,
        exclude_paths: args.exclude,
        allow_subdomains: args.allow_subdomains,
        allow_external: args.allow_external,
        ignore_sitemap: args.ignore_sitemap,
        ignore_query_params: args.ignore_query_params,
        only_main_content: Some(!args.full_page),
        sink: Some(SinkRequest::Directory { path: out.clone() }),
    };
    let spec = request.validate(engine.fetcher().policy(), engine.sinks())?;
    let job = engine.start(&local_operator(), spec).await?;
    let started = std::time::Instant::now();
    let bar = progress_bar();
    let job = crawl_until_done(engine, queue, &job.id, args.workers, |job| {
        show_progress(&bar, job, started.elapsed())
    })
    .await?;
    bar.finish_and_clear();
    print_summary(&job, &out, started.elapsed());
    Ok(())
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(1);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} pages {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn show_progress(bar: &indicatif::ProgressBar, job: &CrawlJob, elapsed: std::time::Duration) {
    let counters = &job.counters;
    bar.set_length(counters.queued.max(1));
    bar.set_position(counters.processed);
    let rate = counters.processed as f64 / elapsed.as_secs_f64().max(0.001);
    bar.set_message(format!(
        "({} queued, {} failed, {rate:.1} pages/s)",
        counters.pending(),
        counters.failed
    ));
}

fn print_summary(job: &CrawlJob, out: &std::path::Path, elapsed: std::time::Duration) {
    let c = &job.counters;
    let rate = c.processed as f64 / elapsed.as_secs_f64().max(0.001);
    println!(
        "crawl {} {:?}: {} pages saved to {} in {:.1} s ({rate:.1} pages/s)",
        job.id,
        job.status,
        c.done,
        out.display(),
        elapsed.as_secs_f64()
    );
    println!(
        "discovered {}, failed {}, skipped: robots {}, scope {}, ssrf {}, not html {}, over limit {}",
        c.discovered,
        c.failed,
        c.skipped_robots,
        c.skipped_scope,
        c.skipped_ssrf,
        c.skipped_unsupported,
        c.skipped_limit
    );
}

async fn connectors(
    data_dir: &std::path::Path,
    command: ConnectorCommand,
    allow_private_networks: bool,
) -> Result<(), Failure> {
    let (services, _) = local_services(data_dir)?;
    let (engine, _) = local_sync_engine(&services, data_dir, allow_private_networks)?;
    match command {
        ConnectorCommand::Create { file, workspace } => {
            let text = std::fs::read_to_string(&file)?;
            let request: connectors_api::CreateRequest = serde_json::from_str(&text)
                .map_err(|error| format!("{}: {error}", file.display()))?;
            let record = connectors_api::create_connector(&engine, &workspace, request)
                .await
                .map_err(|error| format!("{} ({})", error.message, error.code))?;
            println!("{}", connectors_api::view(&record));
        }
        ConnectorCommand::List { workspace } => {
            let (records, _) = engine.connectors.list(&workspace, 100, None).await?;
            for record in records {
                println!("{}", connectors_api::view(&record));
            }
        }
    }
    Ok(())
}

async fn sync(
    data_dir: &std::path::Path,
    connector_id: &str,
    allow_private_networks: bool,
) -> Result<(), Failure> {
    let (services, _) = local_services(data_dir)?;
    let (engine, _) = local_sync_engine(&services, data_dir, allow_private_networks)?;
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new_spinner();
    let progress_bar = bar.clone();
    let engine = engine.with_progress(std::sync::Arc::new(move |run| {
        let c = &run.counts;
        let seen = c.added + c.updated + c.unchanged + c.failed;
        let rate = seen as f64 / started.elapsed().as_secs_f64().max(0.001);
        progress_bar.set_message(format!(
            "{seen} documents seen, {} delivered, {} failed ({rate:.0}/s)",
            c.added + c.updated,
            c.failed
        ));
        progress_bar.tick();
    }));
    // Locally there is no invocation limit: one run to the end (continuations not needed).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600);
    let outcome = engine
        .run_until(
            &tributary::sync::SyncMessage::new(connector_id, "manual"),
            deadline,
            tributary_local::sync::stop_signal(),
        )
        .await?;
    bar.finish_and_clear();
    match outcome {
        tributary::sync::SyncOutcome::Finished(run) => {
            let c = &run.counts;
            let seen = c.added + c.updated + c.unchanged + c.failed;
            println!(
                "sync {:?} in {:.1} s: {seen} documents ({:.0}/s), added {}, updated {}, unchanged {}, deleted {}, failed {}",
                run.status,
                started.elapsed().as_secs_f64(),
                seen as f64 / started.elapsed().as_secs_f64().max(0.001),
                c.added,
                c.updated,
                c.unchanged,
                c.deleted,
                c.failed
            );
            for error in run.errors.iter().take(5) {
                println!("  {error}");
            }
            if run.status != tributary::store::connectors::RunStatus::Completed {
                return Err(format!("the sync of connector {connector_id} failed").into());
            }
        }
        tributary::sync::SyncOutcome::LeaseBusy(lease) => {
            return Err(tributary_local::sync::lease_busy_message(connector_id, &lease).into());
        }
        tributary::sync::SyncOutcome::Gone => {
            return Err(format!("no connector with id {connector_id}").into());
        }
        tributary::sync::SyncOutcome::Interrupted(run) => {
            return Err(format!(
                "sync interrupted after {} documents; lease released, run again to resume from the checkpoint",
                run.counts.added + run.counts.updated + run.counts.unchanged
            )
            .into());
        }
        other => return Err(format!("unexpected outcome: {other:?}").into()),
    }
    Ok(())
}
