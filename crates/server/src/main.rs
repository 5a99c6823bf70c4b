//! The `txwatch` command: `serve` (the default), `migrate` and `seed`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use txwatch_cache::{Keys, WindowStore};
use txwatch_server::seed::{SeedOptions, seed, warm_windows};
use txwatch_server::{Application, Settings, prepare_database, telemetry};
use txwatch_simulator::SimulatorConfig;
use txwatch_storage::TransactionRepository;

#[derive(Parser)]
#[command(version, about = "Real-time transaction anomaly detection server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Load generated history: scored, in time order per user.
    Seed(SeedArgs),
}

#[derive(clap::Args)]
struct SeedArgs {
    /// New users to create.
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Transactions per user.
    #[arg(long, default_value_t = 15_000)]
    rows_per_user: u64,
    /// Days of history before the end.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// RNG seed; with the same --end it reproduces a run exactly.
    #[arg(long)]
    seed: Option<u64>,
    /// When the history ends (RFC 3339); now by default.
    #[arg(long, value_parser = parse_rfc3339)]
    end: Option<OffsetDateTime>,
    /// Delete all stored transactions first.
    #[arg(long)]
    reset: bool,
    /// Parallel COPY streams.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("expected RFC 3339: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {:#}", anyhow::Error::from(error));
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(&settings.log);
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => prepare_database(&settings)
            .await
            .map_err(anyhow::Error::from),
        Command::Seed(args) => run_seed(settings, args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole chain: "error: cause: cause".
            tracing::error!(error = format!("{error:#}"), "stopped");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    application.run_until_stopped().await?;
    Ok(())
}

async fn run_seed(settings: Settings, args: SeedArgs) -> anyhow::Result<()> {
    prepare_database(&settings).await?;
    let mut database = settings.database.clone();
    database.max_connections = database.max_connections.max(args.workers + 1);
    database.statement_timeout_ms = 0;
    // A long copy's round trips wait on Postgres writing what came before;
    // give them room on a busy server.
    database.query_timeout_ms = database.query_timeout_ms.max(60_000);
    let repository = TransactionRepository::new(txwatch_storage::connect(&database)?);
    let detector = settings.detector.build()?;
    let options = SeedOptions {
        users: args.users,
        rows_per_user: args.rows_per_user,
        days: args.days,
        seed: args.seed,
        end: args.end,
        reset: args.reset,
        workers: args.workers,
        window_len: txwatch_server::window_len(&detector),
    };
    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} rows  {per_sec}  eta {eta}")
            .expect("the template is valid"),
    );
    let report = seed(
        &repository,
        detector,
        &SimulatorConfig::default(),
        &options,
        &progress,
    )
    .await?;
    progress.finish_and_clear();
    let end = report.end.format(&Rfc3339).unwrap_or_default();
    println!(
        "seeded {} rows ({} anomalies) for {} users in {:.2} s: {:.0} rows/s",
        report.rows,
        report.anomalies,
        args.users,
        report.elapsed.as_secs_f64(),
        report.rows_per_second()
    );
    println!("reproduce with: --seed {} --end {end}", report.seed);
    let store = WindowStore::new(
        txwatch_cache::connect(&settings.redis)?,
        Keys::new(settings.redis.key_prefix.as_str()),
        options.window_len,
        Duration::from_secs(settings.redis.window_idle_ttl_secs),
    );
    match warm_windows(&store, &repository, &report).await {
        Ok(users) => println!("warmed the Redis windows of {users} users"),
        // The history is stored; windows are rebuilt from it when needed.
        Err(error) => eprintln!(
            "warning: Redis windows not warmed: {:#}",
            anyhow::Error::from(error)
        ),
    }
    Ok(())
}
