//! Decode through CUDA graphs: a call's signature (every expression of the schedule) keys the
//! graph that replays it.

use super::*;

impl Executor {
    /// Every expression of the decode schedule evaluated for `env`: two calls with equal
    /// signatures issue identical launches.
    pub(super) fn signature(&self, env: &Env) -> Result<Vec<u64>, ExecError> {
        let mut sig = vec![env.batch, env.slot];
        for step in &self.program.decode.steps {
            match step {
                Step::Gemm(g) => {
                    sig.push(g.m.eval(env)?);
                    for op in [Some(&g.x), g.c.as_ref(), Some(&g.y)].into_iter().flatten() {
                        sig.push(op.offset.eval(env)?);
                    }
                }
                Step::Launch(l) if l.skips(env)? => sig.push(u64::MAX),
                Step::Launch(l) => {
                    // Which launch (the step's own or a variant) is part of the signature too.
                    let chosen = l.pick_index(env)?;
                    sig.push(chosen as u64);
                    let grid = l.choices().nth(chosen).map_or(&l.grid, |c| c.grid);
                    for e in grid {
                        sig.push(e.eval(env)?);
                    }
                    let extra = l.choices().nth(chosen).map_or(&[][..], |c| c.extra_args);
                    for a in l.args.iter().chain(extra) {
                        match a {
                            Arg::Ptr { offset, .. } => sig.push(offset.eval(env)?),
                            Arg::I32(e) => sig.push(e.eval(env)?),
                            Arg::TensorMap(m) => {
                                if let Arg::Ptr { offset, .. } = m.ptr.as_ref() {
                                    sig.push(offset.eval(env)?);
                                }
                                sig.extend([m.rows.eval(env)?, m.cols.eval(env)?, m.row_stride.eval(env)?]);
                            }
                            Arg::Null => {}
                        }
                    }
                }
            }
        }
        Ok(sig)
    }

    /// A decode call through the graph cache (see the module doc).
    pub(super) fn decode_graph(&mut self, env: &Env) -> Result<(), ExecError> {
        let key = self.signature(env)?;
        match self.graphs.get(&key) {
            None => {
                self.enqueue(Phase::Decode, env, 0..self.program.decode.steps.len())?;
                self.graphs.insert(key, GraphSlot::Seen);
                self.graph_stats.direct += 1;
            }
            Some(GraphSlot::Seen) => {
                let stream = self.gpu.stream().clone();
                stream
                    .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                    .map_err(|e| CudaError::driver("beginning the capture of a decode graph", e))?;
                let enqueued = self.enqueue(Phase::Decode, env, 0..self.program.decode.steps.len());
                // End the capture on every path, so the stream is usable after an error.
                let ended = stream.end_capture(CUgraphInstantiate_flags(0));
                enqueued?;
                let graph = ended
                    .map_err(|e| CudaError::driver("instantiating a decode graph", e))?
                    .ok_or_else(|| ExecError::Unsupported("the decode capture recorded nothing".into()))?;
                graph
                    .launch()
                    .map_err(|e| CudaError::driver("launching a decode graph", e))?;
                self.graphs.insert(key, GraphSlot::Graph(graph));
                self.graph_stats.captured += 1;
            }
            Some(GraphSlot::Graph(g)) => {
                g.launch()
                    .map_err(|e| CudaError::driver("replaying a decode graph", e))?;
                self.graph_stats.replayed += 1;
            }
        }
        Ok(())
    }
}
