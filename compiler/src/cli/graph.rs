//! `modelc graph`.

/// Arguments of `modelc graph`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`modelc graph` is not implemented yet")
}
