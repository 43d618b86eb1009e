    __syncthreads(); /* flags[0] = 0 before any atomicOr */
    if (wmask) atomicOr(flags, wmask);
    __syncthreads();
