# What the mocked Google provider returns for the data sources (terraform test reads no real project). The provider
# still validates every argument, so the values have the shapes GCP returns.

mock_data "google_project" {
  defaults = {
    number = "123456789012"
  }
}

mock_data "google_storage_project_service_account" {
  defaults = {
    email_address = "service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
    member        = "serviceAccount:service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
  }
}

mock_data "google_logging_project_cmek_settings" {
  defaults = {
    service_account_id = "service-123456789012@gcp-sa-logging.iam.gserviceaccount.com"
  }
}
