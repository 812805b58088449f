"""Pure tensor functions (torch only): losses, schedules, advantages, KL estimators."""
