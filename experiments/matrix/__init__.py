"""The matrix experiments of Cornish 2024, section 7.3."""
