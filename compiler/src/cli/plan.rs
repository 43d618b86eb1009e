//! `modelc plan`.

/// Arguments of `modelc plan`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`modelc plan` is not implemented yet")
}
