"""Reports: the run summary JSON, failure text, allure labels and extras."""
