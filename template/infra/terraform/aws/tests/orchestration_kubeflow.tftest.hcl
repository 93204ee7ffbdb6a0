# orchestrator = kubeflow: the IRSA role of the pipeline's pods, planned against a mocked AWS provider with one
# environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "aws" {
  source = "./tests/mocks"
}

run "no_pipeline_role_before_the_cluster_is_named" {
  command = plan

  assert {
    condition     = length(aws_iam_role.pipeline) == 0 && output.pipeline_role_arn == ""
    error_message = "the pipeline role is planned before the cluster's OIDC provider is given"
  }
}

run "the_pipeline_role_trusts_the_profile_service_account_only" {
  command = plan

  variables {
    kubeflow_oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B716D3041E"
  }

  assert {
    condition = (
      jsondecode(aws_iam_role.pipeline[0].assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B716D3041E:sub"]
      == "system:serviceaccount:${var.project}-${var.environment}-pipeline:${var.project}-pipeline"
    )
    error_message = "the pipeline role must trust only the pipeline service account of the profile's namespace"
  }

  assert {
    condition     = jsondecode(aws_iam_role.pipeline[0].assume_role_policy).Statement[0].Principal.Federated == var.kubeflow_oidc_provider_arn
    error_message = "the pipeline role must trust the given cluster's OIDC provider"
  }

  assert {
    condition     = strcontains(output.pipeline_store, "/pipeline") && startswith(output.pipeline_store, "s3://")
    error_message = "the run store is not the pipeline/ prefix of the data bucket"
  }
}

run "a_malformed_provider_arn_is_refused" {
  command = plan

  variables {
    kubeflow_oidc_provider_arn = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"
  }

  expect_failures = [var.kubeflow_oidc_provider_arn]
}
