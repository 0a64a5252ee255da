mod identity;
mod local;
mod queue_contract;
mod store_contract;
mod token_check;
