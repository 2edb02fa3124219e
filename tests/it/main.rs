//! Integration tests: one binary (faster to link), one module per area.

mod cli;
mod fixtures;
mod pipeline;
mod servers;
mod support;
