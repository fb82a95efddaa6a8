//! meshward authz filter (under construction).
