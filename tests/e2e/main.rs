mod identity;
mod local;
mod oidc_harness;
mod queue_contract;
mod store_contract;
mod token_check;
