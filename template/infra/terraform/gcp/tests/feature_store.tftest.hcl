# feature_store = feast: the Firestore (Datastore mode) online store (feature_store.tf), planned against a mocked
# Google provider with one environment's values (`make infra-test` runs this file per environment).

mock_provider "google" {
  source = "./tests/mocks"
}

run "one_encrypted_datastore_database" {
  command = plan

  assert {
    condition = (
      google_firestore_database.features.type == "DATASTORE_MODE"
      && google_firestore_database.features.name == "${var.project}-${var.environment}-features"
      && google_firestore_database.features.point_in_time_recovery_enablement == "POINT_IN_TIME_RECOVERY_ENABLED"
      && length(google_firestore_database.features.cmek_config) == 1
    )
    error_message = "the online store is one Datastore-mode database per environment, with PITR and the project's key"
  }

  assert {
    condition     = (google_firestore_database.features.delete_protection_state == "DELETE_PROTECTION_ENABLED") == (var.environment == "production")
    error_message = "production's database must be protected from deletion"
  }

  assert {
    condition = (
      google_project_iam_member.feature_store["runtime"].role == "roles/datastore.viewer"
      && google_project_iam_member.feature_store["ci"].role == "roles/datastore.user"
      && alltrue([for grant in google_project_iam_member.feature_store : strcontains(one(grant.condition).expression, "/databases/${var.project}-${var.environment}-features")])
    )
    error_message = "the service reads and CI writes this one database only (IAM conditions)"
  }

  assert {
    condition     = local.feature_store_environment["FEATURE_STORE_DATABASE"] == google_firestore_database.features.name
    error_message = "the service must be pointed at the database Terraform creates"
  }
}
