# tracking_server = managed: SageMaker's managed MLflow tracking server (tracking_sagemaker.tf), planned against a
# mocked AWS provider with one environment's values (`make infra-test` runs this file per environment).

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target          = aws_sagemaker_mlflow_tracking_server.main
  override_during = plan
  values = {
    arn = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/test-mlflow"
  }
}

override_resource {
  target          = aws_iam_policy.boundary
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:policy/test-ci-boundary"
  }
}

run "creates_the_managed_server" {
  command = plan

  assert {
    condition = (
      length(aws_sagemaker_mlflow_tracking_server.main) == 1
      && aws_sagemaker_mlflow_tracking_server.main[0].tracking_server_name == "${var.project}-${var.environment}-mlflow"
      && aws_sagemaker_mlflow_tracking_server.main[0].artifact_store_uri == "s3://${var.project}-models-${var.environment}/mlflow"
      && aws_sagemaker_mlflow_tracking_server.main[0].automatic_model_registration == false
    )
    error_message = "the managed server must keep its artefacts under mlflow/ of the project's models bucket"
  }

  assert {
    condition     = output.tracking_uri == "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/test-mlflow" && output.tracking_audience == ""
    error_message = "tracking_uri must be the server's ARN (the sagemaker-mlflow plugin signs with SigV4: no audience)"
  }

  assert {
    condition = alltrue([
      for statement in data.aws_iam_policy_document.tracking_artifacts.statement :
      alltrue([
        for resource in statement.resources :
        !startswith(resource, "arn:aws:s3") || endswith(resource, "/mlflow/*")
        || anytrue([for condition in statement.condition : condition.variable == "s3:prefix" && contains(condition.values, "mlflow/*")])
      ])
      if statement.sid != "EncryptDecryptArtefacts"
    ])
    error_message = "the server's role may reach only the mlflow/ prefix of the models bucket"
  }

  assert {
    condition = (
      one([for statement in data.aws_iam_policy_document.ci_tracking.statement : statement.resources if statement.sid == "UseTheTrackingServer"])
      == toset(["arn:aws:sagemaker:${var.region}:123456789012:mlflow-tracking-server/${var.project}-${var.environment}-mlflow"])
    )
    error_message = "CI may use the MLflow data plane of this server only"
  }

  assert {
    condition     = length(aws_iam_role_policy.ci_tracking) == (var.create_main_branch_role ? 2 : 1)
    error_message = "the environment's CI role (and main's, where this stack has it) must be allowed to use the server"
  }
}

run "existing_server_creates_nothing" {
  command = plan

  variables {
    tracking_server_url = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/shared"
  }

  assert {
    condition = (
      length(aws_sagemaker_mlflow_tracking_server.main) == 0 && length(aws_iam_role.tracking) == 0
      && length(aws_iam_role_policy.ci_tracking) == 0
      && output.tracking_uri == "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/shared"
    )
    error_message = "with tracking_server_url set, the stack must create nothing and point clients at that server"
  }
}
