mod identity;
mod queue_contract;
mod store_contract;
mod token_check;
