//! Buffer sizes: every expression of a program at the largest value any call within the
//! [`ExecConfig`] limits can give it.

use super::*;

/// The environments whose maximum bounds every call the config allows: per phase, every batch
/// size (a size like `batch·cdiv(2·sms, 2·batch)` is not monotone in `batch`), the extreme token
/// counts, and an empty or full past. Sizes are monotone in `tokens` and `past` (they only
/// appear outside divisors), so the extremes bound them.
pub(super) fn sizing_envs(cfg: &ExecConfig, sms: u64) -> Vec<Env> {
    let base = Env {
        batch: 1,
        tokens: 1,
        past: 0,
        max_len: cfg.max_len as u64,
        slots: cfg.slots as u64,
        slot: 0,
        sms,
    };
    let mut envs = Vec::new();
    for (batches, tokens) in [
        (cfg.max_prefill_batch, vec![1, cfg.max_prefill_tokens]),
        (cfg.slots, vec![1]),
    ] {
        for batch in 1..=batches {
            for &t in &tokens {
                for past in [0, cfg.max_len.saturating_sub(t)] {
                    envs.push(Env {
                        batch: batch as u64,
                        tokens: t as u64,
                        past: past as u64,
                        ..base
                    });
                }
            }
        }
    }
    envs
}

/// The largest value of `e` over `envs` (at least 1, so every region has an address).
pub(super) fn max_over(e: &Expr, envs: &[Env]) -> Result<usize, ExecError> {
    let mut m = 1usize;
    for env in envs {
        m = m.max(eval(e, env)?);
    }
    Ok(m)
}

/// Element counts of every per-call buffer, input and output, and per-slot state sizes, for a
/// configuration: what [`Executor::new`] allocates (pure; tested without a GPU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizes {
    pub buffers: Vec<usize>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// Elements of one sequence's copy of each state.
    pub state_per_slot: Vec<usize>,
}

impl Sizes {
    pub fn of(program: &Program, cfg: &ExecConfig, sms: u64) -> Result<Sizes, ExecError> {
        let envs = sizing_envs(cfg, sms);
        let one = |e: &Expr| max_over(e, &envs);
        let buffers = program
            .buffers
            .iter()
            .map(|b| one(&b.elements))
            .collect::<Result<_, _>>()?;
        let inputs = program
            .inputs
            .iter()
            .map(|b| one(&b.elements))
            .collect::<Result<_, _>>()?;
        let outputs = program
            .outputs
            .iter()
            .map(|b| one(&b.elements))
            .collect::<Result<_, _>>()?;
        let state_per_slot = program
            .states
            .iter()
            .map(|s| eval(&s.per_slot(), &envs[0]))
            .collect::<Result<_, _>>()?;
        Ok(Sizes {
            buffers,
            inputs,
            outputs,
            state_per_slot,
        })
    }

    /// Bytes of weights, states (all slots) and per-call memory.
    pub fn memory(&self, program: &Program, slots: usize) -> MemoryUse {
        let weights = program
            .weights
            .iter()
            .map(|w| w.shape.iter().product::<usize>() * w.dtype.size())
            .sum();
        let states = program
            .states
            .iter()
            .zip(&self.state_per_slot)
            .map(|(s, &n)| n * slots * s.dtype.size())
            .sum();
        let per_call = |items: &[usize], dtypes: &mut dyn Iterator<Item = DType>| -> usize {
            items.iter().zip(dtypes).map(|(&n, d)| n * d.size()).sum()
        };
        let buffers = per_call(&self.buffers, &mut program.buffers.iter().map(|b| b.dtype))
            + per_call(&self.inputs, &mut program.inputs.iter().map(|b| b.dtype))
            + per_call(&self.outputs, &mut program.outputs.iter().map(|b| b.dtype));
        MemoryUse {
            weights,
            states,
            buffers,
        }
    }
}
