# orchestrator = kubeflow: the Vertex AI Pipelines identity and its run store, planned against a mocked Google provider
# with one environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "google" {
  source = "./tests/mocks"
}

run "the_pipeline_identity_is_least_privilege" {
  command = plan

  assert {
    condition = (
      google_storage_bucket_iam_member.pipeline_store.condition[0].expression == "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.this["data"].name}/objects/pipeline/\")"
      && google_storage_bucket_iam_member.pipeline_store.role == "roles/storage.objectUser"
    )
    error_message = "the pipeline identity may write objects outside the pipeline/ prefix of the data bucket"
  }

  assert {
    condition     = toset(keys(google_service_account_iam_member.pipeline_act_as)) == toset(["pipeline", "ci"])
    error_message = "only the pipeline identity itself and CI may act as the pipeline identity"
  }

  assert {
    condition     = google_artifact_registry_repository_iam_member.pipeline_pulls_image.role == "roles/artifactregistry.reader"
    error_message = "the pipeline identity must only read the image repository"
  }

  assert {
    condition     = output.pipeline_store == "gs://${google_storage_bucket.this["data"].name}/pipeline"
    error_message = "the run store is not the pipeline/ prefix of the data bucket"
  }
}
