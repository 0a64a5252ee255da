mod queue_contract;
