//! Integration tests: one binary (faster to link), one module per area.

mod action;
mod asks;
mod cli;
mod contracts;
mod fake_forge;
mod fake_repo_api;
mod faults;
mod fixtures;
mod fleet;
mod forge;
mod gitea;
mod join;
mod packaging;
mod pipeline;
mod readme;
mod registry;
mod registry_server;
mod servers;
mod signing;
mod support;
mod via_api;
