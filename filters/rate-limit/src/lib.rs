//! meshward rate-limit filter (under construction).
