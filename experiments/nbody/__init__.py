"""The N-body benchmark: charged particles (EGNN sec. 5.1), markovcat against the equivariant-model libraries."""
