# tracking_server = self_hosted: the shared MLflow server (tracking_server.tf), planned against a mocked Google
# provider with one environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "google" {
  source = "./tests/mocks"
}

variables {
  tracking_server_image = "us-central1-docker.pkg.dev/example/images/mlflow@sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  tracking_iap_members  = ["group:ml-team@example.com"]
}

run "existing_server_creates_nothing" {
  command = plan

  variables {
    tracking_server_url = "https://mlflow.example.com/"
  }

  assert {
    condition = (
      length(google_cloud_run_v2_service.tracking) == 0 && length(google_sql_database_instance.tracking) == 0
      && length(google_storage_bucket.tracking) == 0 && length(google_iap_web_cloud_run_service_iam_member.tracking) == 0
      && output.tracking_uri == "https://mlflow.example.com" && output.tracking_audience == "https://mlflow.example.com"
    )
    error_message = "with tracking_server_url set, the stack must create nothing and point clients at that server"
  }
}

run "creates_the_server_behind_iap" {
  command = plan

  assert {
    condition     = length(google_cloud_run_v2_service.tracking) == 1 && google_cloud_run_v2_service.tracking[0].iap_enabled
    error_message = "the server must run on Cloud Run with IAP in front"
  }

  assert {
    condition     = google_cloud_run_v2_service_iam_member.tracking_iap_invoker[0].member == "serviceAccount:service-${data.google_project.this.number}@gcp-sa-iap.iam.gserviceaccount.com"
    error_message = "only IAP's service agent may invoke the service"
  }

  assert {
    condition     = keys(google_iap_web_cloud_run_service_iam_member.tracking) == ["ci", "group:ml-team@example.com"]
    error_message = "IAP must admit exactly the listed principals and CI's service account"
  }

  assert {
    condition = (
      google_sql_database_instance.tracking[0].settings[0].ip_configuration[0].ipv4_enabled == false
      && google_sql_database_instance.tracking[0].settings[0].ip_configuration[0].ssl_mode == "ENCRYPTED_ONLY"
      && google_storage_bucket.tracking[0].public_access_prevention == "enforced"
    )
    error_message = "the database must have no public IP and require TLS; the artefact bucket must be private"
  }

  assert {
    condition     = contains(google_cloud_run_v2_service.tracking[0].template[0].containers[0].args, "--serve-artifacts")
    error_message = "MLflow must serve the artefacts itself (clients need no bucket rights)"
  }
}

run "backend_store_is_protected_in_production" {
  command = plan

  assert {
    condition = (
      google_sql_database_instance.tracking[0].deletion_protection == (var.environment == "production")
      && google_sql_database_instance.tracking[0].settings[0].deletion_protection_enabled == (var.environment == "production")
      && google_sql_database_instance.tracking[0].settings[0].backup_configuration[0].point_in_time_recovery_enabled
      && google_sql_database_instance.tracking[0].settings[0].backup_configuration[0].backup_retention_settings[0].retained_backups == (var.environment == "production" ? 35 : 7)
    )
    error_message = "production needs deletion protection and 35 backups with point-in-time recovery"
  }
}
