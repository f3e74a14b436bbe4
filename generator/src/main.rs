//! The generator CLI: `generate [--out DIR]`, `check [--dir DIR]`,
//! `bench [-n N]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

/// Compiles specs/ and templates/ into generated/.
#[derive(Parser)]
#[command(name = "generator", about)]
struct Cli {
    /// Workspace root holding specs/ and templates/ (default: the parent of
    /// the generator crate).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the generated files (default: <root>/generated).
    Generate {
        /// Output directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Exit non-zero with a diff when the checked-in output is stale.
    Check {
        /// Directory to compare with (default: <root>/generated).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Time full regeneration (load, validate, render, write to a scratch
    /// directory) N times and print mean and median.
    Bench {
        /// Number of timed runs.
        #[arg(short = 'n', long, default_value_t = 50)]
        runs: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli.root.unwrap_or_else(default_root);
    let result = match cli.command {
        Command::Generate { out } => {
            generate(&root, &out.unwrap_or_else(|| root.join("generated")))
        }
        Command::Check { dir } => check(&root, &dir.unwrap_or_else(|| root.join("generated"))),
        Command::Bench { runs } => bench(&root, runs),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn default_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).to_path_buf()
}

fn report_skipped(catalog: &generator::Catalog) {
    for s in &catalog.skipped {
        eprintln!("skipped {}.{}: {}", s.resource, s.method, s.reason);
    }
}

fn generate(root: &Path, out: &Path) -> Result<ExitCode, generator::Error> {
    let catalog = generator::write(root, out)?;
    report_skipped(&catalog);
    println!("wrote {} tools to {}", catalog.tools.len(), out.display());
    Ok(ExitCode::SUCCESS)
}

fn check(root: &Path, dir: &Path) -> Result<ExitCode, generator::Error> {
    let (catalog, files) = generator::generate(root)?;
    report_skipped(&catalog);
    let diff = generator::output::compare(dir, &files)?;
    if diff.is_empty() {
        println!(
            "{} is up to date ({} tools)",
            dir.display(),
            catalog.tools.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        print!("{diff}");
        eprintln!(
            "{} is stale; run `{}`",
            dir.display(),
            generator::output::REGENERATE
        );
        Ok(ExitCode::FAILURE)
    }
}

fn bench(root: &Path, runs: usize) -> Result<ExitCode, generator::Error> {
    let scratch = std::env::temp_dir().join(format!("generator-bench-{}", std::process::id()));
    let runs = runs.max(1);
    let mut times = Vec::with_capacity(runs);
    let mut tools = 0;
    // One untimed run warms the file cache.
    generator::write(root, &scratch)?;
    for _ in 0..runs {
        // Start from an empty directory so every run writes every file.
        let _ = std::fs::remove_dir_all(&scratch);
        let start = Instant::now();
        let catalog = generator::write(root, &scratch)?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        tools = catalog.tools.len();
    }
    let _ = std::fs::remove_dir_all(&scratch);
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let median = times[times.len() / 2];
    println!(
        "full regeneration ({tools} tools), {runs} runs: mean {mean:.2} ms, median {median:.2} ms, min {:.2} ms, max {:.2} ms",
        times[0],
        times[times.len() - 1]
    );
    Ok(ExitCode::SUCCESS)
}
