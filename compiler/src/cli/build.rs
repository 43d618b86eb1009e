//! `modelc build`.

/// Arguments of `modelc build`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`modelc build` is not implemented yet")
}
