# orchestrator = sagemaker: the pipeline and job roles of orchestration_sagemaker.tf, planned against a mocked AWS
# provider with one environment's values (`make infra-test` runs this file per environment).

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target          = aws_iam_role.sagemaker_job
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:role/test-sagemaker-job"
  }
}

override_resource {
  target          = aws_iam_policy.boundary
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:policy/test-ci-boundary"
  }
}

override_resource {
  target          = aws_kms_key.main
  override_during = plan
  values = {
    arn = "arn:aws:kms:us-east-1:123456789012:key/test"
  }
}

run "roles_are_least_privilege" {
  command = plan

  assert {
    condition = (
      aws_iam_role.sagemaker_pipeline.name == "${var.project}-${var.environment}-sagemaker-pipeline"
      && aws_iam_role.sagemaker_job.name == "${var.project}-${var.environment}-sagemaker-job"
      && aws_iam_role.sagemaker_job.permissions_boundary == "arn:aws:iam::123456789012:policy/test-ci-boundary"
      && aws_iam_role.sagemaker_pipeline.permissions_boundary == "arn:aws:iam::123456789012:policy/test-ci-boundary"
    )
    error_message = "both SageMaker roles must be named after the stack and carry its permissions boundary"
  }

  assert {
    condition = alltrue([
      for statement in data.aws_iam_policy_document.sagemaker_pipeline_trust.statement :
      statement.principals == toset([{ type = "Service", identifiers = toset(["sagemaker.amazonaws.com"]) }])
    ])
    error_message = "only SageMaker may assume the pipeline and job roles"
  }

  assert {
    condition = (
      one([for statement in data.aws_iam_policy_document.sagemaker_pipeline.statement : toset(statement.resources) if statement.sid == "PassTheJobRole"])
      == toset(["arn:aws:iam::123456789012:role/test-sagemaker-job"])
      && flatten([
        for statement in data.aws_iam_policy_document.sagemaker_pipeline.statement :
        [for condition in statement.condition : "${condition.variable}=${join(",", condition.values)}"] if statement.sid == "PassTheJobRole"
      ]) == ["iam:PassedToService=sagemaker.amazonaws.com"]
    )
    error_message = "the pipeline role may pass the job role only, and only to SageMaker"
  }

  assert {
    condition = alltrue(flatten([
      for statement in data.aws_iam_policy_document.sagemaker_pipeline.statement : [
        for condition in statement.condition :
        toset(condition.values) == toset(var.sagemaker_training_instance_types) if condition.variable == "sagemaker:InstanceTypes"
      ] if statement.sid == "StartTrainingJobs"
    ]))
    error_message = "training jobs must be limited to var.sagemaker_training_instance_types"
  }

  assert {
    condition = alltrue(flatten([
      for statement in data.aws_iam_policy_document.sagemaker_pipeline.statement : [
        for condition in statement.condition :
        toset(condition.values) == toset(["arn:aws:kms:us-east-1:123456789012:key/test"]) if condition.variable == "sagemaker:VolumeKmsKey"
      ] if startswith(statement.sid, "Start")
    ]))
    error_message = "every job the pipeline starts must encrypt its volume with the project key"
  }

  assert {
    condition = alltrue([
      for statement in data.aws_iam_policy_document.sagemaker_job.statement :
      alltrue([
        for resource in statement.resources :
        !startswith(resource, "arn:aws:s3") || endswith(resource, "/pipeline/*")
        || anytrue([for condition in statement.condition : condition.variable == "s3:prefix" && contains(condition.values, "pipeline/*")])
      ])
    ])
    error_message = "the job role may reach only the pipeline/ prefix of the data bucket"
  }

  assert {
    condition     = output.sagemaker_pipeline_store == "s3://${var.project}-data-${var.environment}/pipeline"
    error_message = "the store is the pipeline/ prefix of the project's data bucket"
  }

  assert {
    condition     = output.sagemaker_pipeline_parameters.TrainingInstanceType == var.sagemaker_training_instance_types[0]
    error_message = "the default training instance type is the first allowed one"
  }
}

run "instance_types_are_validated" {
  command = plan

  variables {
    sagemaker_training_instance_types = ["m5.xlarge"]
  }

  expect_failures = [var.sagemaker_training_instance_types]
}
