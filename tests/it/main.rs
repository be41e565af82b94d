//! Integration tests: the real `driftless` binary against real stores.
#![expect(
    unreachable_pub,
    reason = "helpers are shared between the test modules"
)]

mod architecture;
mod atomic;
mod auth;
mod bad_input;
mod canary;
mod cdn;
mod ci;
mod crash;
mod doctor;
mod edge;
mod faults;
mod gc;
mod generators;
mod guards;
mod hardening;
mod holes;
mod incident;
mod init;
mod install;
mod lifecycle;
mod names;
mod pipeline;
mod previews;
mod release_edge;
mod retention;
mod s3;
mod scale;
mod serve;
mod servers;
mod team;
mod util;
mod watch;
