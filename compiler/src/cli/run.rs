//! `modelc run`.

/// Arguments of `modelc run`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`modelc run` is not implemented yet")
}
