# serving = managed: the SageMaker real-time endpoint, planned against a mocked AWS provider with one environment's
# values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target          = aws_iam_policy.boundary
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:policy/test-ci-boundary"
  }
}

# CD deploys by digest (production refuses a tag alone).
variables {
  image_digest = "sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
}

run "first_apply_creates_no_serving_resources" {
  command = plan

  variables {
    image_tag = ""
  }

  assert {
    condition     = length(aws_sagemaker_endpoint.api) == 0 && length(aws_sagemaker_model.api) == 0 && output.service_url == ""
    error_message = "the endpoint or its model are planned before an image tag is given"
  }
}

run "deploy_of_an_image_tag" {
  command = plan

  variables {
    # A full git SHA: SageMaker names are at most 63 characters, so the revision name must be cut to fit.
    image_tag = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  }

  assert {
    condition     = length(aws_sagemaker_endpoint.api) == 1 && aws_sagemaker_endpoint.api[0].name == "${var.project}-${var.environment}"
    error_message = "a deploy does not plan the endpoint <project>-<environment>"
  }

  assert {
    condition = (
      length(aws_sagemaker_model.api[0].name) <= 63 && aws_sagemaker_model.api[0].name == aws_sagemaker_endpoint_configuration.api[0].name
      && startswith(aws_sagemaker_model.api[0].name, "${var.project}-${var.environment}-")
    )
    error_message = "the model and endpoint configuration names must fit SageMaker's 63 characters and name the revision"
  }

  # The container has no network (network isolation): SageMaker's data capture writes the calls under the inference
  # log prefix, which the drift check's pull converts, and the execution role may only add objects there.
  assert {
    condition = (
      aws_sagemaker_endpoint_configuration.api[0].data_capture_config[0].enable_capture
      && aws_sagemaker_endpoint_configuration.api[0].data_capture_config[0].initial_sampling_percentage == var.data_capture_percentage
      && aws_sagemaker_endpoint_configuration.api[0].data_capture_config[0].destination_s3_uri == "s3://${var.project}-data-${var.environment}/inference/capture/"
      && length(aws_sagemaker_endpoint_configuration.api[0].data_capture_config[0].capture_options) == 2
      && one([for statement in data.aws_iam_policy_document.sagemaker.statement : statement.actions if statement.sid == "WriteDataCaptureOnly"]) == toset(["s3:PutObject"])
    )
    error_message = "the endpoint does not capture its calls under s3://<data bucket>/inference/capture/ for the drift check"
  }

  # Autoscaling bounds: what envs/<environment>.tfvars asks for, and production never below two instances.
  assert {
    condition = (
      aws_appautoscaling_target.endpoint[0].min_capacity == var.endpoint_min_instances
      && aws_appautoscaling_target.endpoint[0].max_capacity == var.endpoint_max_instances
      && var.endpoint_min_instances >= 1 && var.endpoint_min_instances <= var.endpoint_max_instances
      && alltrue([for variant in aws_sagemaker_endpoint_configuration.api[0].production_variants : variant.initial_instance_count == var.endpoint_min_instances && variant.instance_type == var.endpoint_instance_type])
      && (var.environment != "production" || var.endpoint_min_instances >= 2)
    )
    error_message = "endpoint autoscaling bounds are not 1 <= min <= max (production: min >= 2), or the endpoint starts outside them"
  }

  assert {
    condition = (
      aws_sagemaker_model.api[0].enable_network_isolation
      && alltrue([for c in aws_sagemaker_model.api[0].primary_container : c.environment.PORT == "8080" && c.environment.APP_ENV == var.environment])
    )
    error_message = "the model container must run network-isolated and listen on SageMaker's port 8080"
  }

  # SageMaker authenticates every call (SigV4) and runs the image by digest; its execution role is bounded.
  assert {
    condition = (
      alltrue([for c in aws_sagemaker_model.api[0].primary_container : c.environment.AUTH_MODE == "gateway" && c.image == "${local.image_repository_url}@${var.image_digest}"])
      && aws_iam_role.sagemaker.permissions_boundary == aws_iam_policy.boundary.arn
    )
    error_message = "the model container does not set AUTH_MODE, run the image by digest, or its role lacks the permissions boundary"
  }

  assert {
    condition = alltrue([
      for config in aws_sagemaker_endpoint.api[0].deployment_config : alltrue([
        for rollback in config.auto_rollback_configuration : length(rollback.alarms) == 1
      ])
    ])
    error_message = "a blue/green update must roll back on the deployment guard alarm"
  }
}
