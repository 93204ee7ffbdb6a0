# serving = kubernetes: `terraform test` plans against a mocked Google provider (no project, no cluster), run with
# either environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "google" {
  source = "./tests/mocks"

  # The organisation's cluster, in the platform team's project, with Workload Identity enabled.
  mock_data "google_container_cluster" {
    defaults = {
      workload_identity_config = [{ workload_pool = "platform-prj.svc.id.goog" }]
    }
  }
}

variables {
  # CD deploys by digest (production refuses a tag alone).
  image_digest       = "sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  cluster_name       = "platform"
  cluster_project_id = "platform-prj"
  service_domain     = "churn.example.org"
  image_tag          = "0123456789abcdef"
}

run "workload_identity_trusts_only_the_namespace_service_accounts" {
  command = plan

  assert {
    condition = (
      google_service_account_iam_member.workload_identity["server"].member == "serviceAccount:platform-prj.svc.id.goog[${var.project}-${var.environment}/${var.project}]"
      && google_service_account_iam_member.workload_identity["batch"].member == "serviceAccount:platform-prj.svc.id.goog[${var.project}-${var.environment}/${var.project}-batch]"
      && google_service_account_iam_member.workload_identity["server"].role == "roles/iam.workloadIdentityUser"
    )
    error_message = "each Google service account must trust exactly one service account of namespace <project>-<environment>"
  }

  assert {
    condition     = length(google_service_account_iam_member.workload_identity) == 2
    error_message = "only the service and the batch job get a workload identity"
  }

  assert {
    condition     = google_project_iam_member.ci_gets_cluster_credentials[0].role == "roles/container.clusterViewer" && google_project_iam_member.ci_gets_cluster_credentials[0].project == "platform-prj"
    error_message = "CD may fetch the cluster's credentials in the cluster's project, nothing more"
  }

  assert {
    condition     = output.service_url == "https://churn.example.org" && output.kubernetes_namespace == "${var.project}-${var.environment}"
    error_message = "service_url and the namespace are what make k8s-manifests and the docs expect"
  }
}

run "before_cluster_name_nothing_in_the_cluster_is_planned" {
  command = plan

  variables {
    cluster_name = ""
    image_tag    = ""
  }

  assert {
    condition     = length(google_service_account_iam_member.workload_identity) == 0 && length(google_project_iam_member.ci_gets_cluster_credentials) == 0
    error_message = "without cluster_name the first apply must create the shared resources only"
  }
}

run "a_deploy_needs_the_cluster" {
  command = plan

  variables {
    cluster_name = ""
  }

  expect_failures = [terraform_data.kubernetes_cluster]
}
