/// mimalloc: requests allocate and free small objects on both runtime threads; with glibc's
/// allocator that was 15 % of the token endpoint's CPU (see bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser as _;

fn main() {
    let cli = mandat::cli::Cli::parse();
    let config = match mandat::config::Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(3);
        }
    };
    mandat::telemetry::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime
        .block_on(mandat::cli::run(cli, config))
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            e.exit_code()
        });
    std::process::exit(code);
}
