//! The `modelc` command line: one subcommand per file under `cli/`.

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(name = "modelc", version, about = "A compiler for Apriel2 hybrid LLM architectures")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate, lower, verify and fuse a spec; write the IR, a summary, the kernels, the program and a
    /// Cargo crate of typed weights to DIR.
    Build(cli::build::Args),
    /// Print the IR of a spec as text or Graphviz.
    Graph(cli::graph::Args),
    /// Print the fused CUDA C kernels of a spec (all, one layer's, or one mixer kind's).
    Kernels(cli::kernels::Args),
    /// Run a checkpoint or a spec (random weights): greedy continuation of a prompt.
    Run(cli::run::Args),
    /// Time the compiled program on the GPU (warm): prefill of T tokens, decode at batch sizes.
    Bench(cli::bench::Args),
    /// Print the conversion plan of a surgery and the resulting config (writes nothing).
    Plan(cli::plan::Args),
    /// Stream a checkpoint through surgeries into a new checkpoint directory.
    Convert(cli::convert::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    remove_outputs_on_interrupt();
    let result = match cli.command {
        Command::Build(a) => cli::build::run(a),
        Command::Graph(a) => cli::graph::run(a),
        Command::Kernels(a) => cli::kernels::run(a),
        Command::Run(a) => cli::run::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Plan(a) => cli::plan::run(a),
        Command::Convert(a) => cli::convert::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// On SIGINT/SIGTERM (and SIGHUP): removes the hidden temps of outputs being written (a
/// converted checkpoint can be hundreds of MB), then exits with status 130. A SIGKILL cannot be
/// caught: the next output to the same path removes what it left.
fn remove_outputs_on_interrupt() {
    let handler = || {
        let removed = modelc_runtime::weights::remove_live_temps();
        for path in &removed {
            eprintln!("interrupted: removed the unfinished {}", path.display());
        }
        if removed.is_empty() {
            eprintln!("interrupted");
        }
        std::process::exit(130);
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        eprintln!("warning: cannot handle interrupts ({e}); an interrupted output may leave a hidden temp behind");
    }
}

/// The error and its causes on one line, skipping a cause whose text an outer message already
/// quotes (library errors often embed their source in their own message).
fn describe(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}
