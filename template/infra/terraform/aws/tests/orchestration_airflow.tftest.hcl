# orchestrator = airflow: the MWAA environment, its DAG bucket and roles, and the pipeline's Fargate task definition
# (orchestration_airflow.tf), planned against a mocked AWS provider with one environment's values.

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

variables {
  pipeline_image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/test@sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
}

run "before_the_first_pipeline_image_only_the_bucket_and_roles" {
  command = plan

  variables {
    pipeline_image = ""
  }

  assert {
    condition     = length(aws_mwaa_environment.main) == 0 && length(aws_ecs_task_definition.pipeline) == 0 && length(aws_vpc_endpoint.airflow) == 0
    error_message = "the environment, the task definition or its endpoints are planned before a pipeline image exists"
  }

  assert {
    condition     = aws_s3_bucket.project["airflow"].bucket == "airflow-${var.project}-${var.environment}"
    error_message = "MWAA's DAG bucket must be a project bucket (versioned, KMS, private, TLS only) named airflow-*"
  }
}

run "the_environment_runs_airflow_3_privately" {
  command = plan

  assert {
    condition = (
      startswith(aws_mwaa_environment.main[0].airflow_version, "3.")
      && aws_mwaa_environment.main[0].webserver_access_mode == "PRIVATE_ONLY"
      && aws_mwaa_environment.main[0].dag_s3_path == "dags/"
      && aws_mwaa_environment.main[0].requirements_s3_path == "requirements.txt"
      && length(aws_subnet.private) >= 2
    )
    error_message = "MWAA must run Airflow 3 with a private webserver in two private subnets, DAGs from dags/"
  }

  assert {
    condition = jsonencode(output.airflow_variables) == jsonencode([
      "pipeline_ecs_cluster", "pipeline_log_group", "pipeline_security_group", "pipeline_store",
      "pipeline_subnet_a", "pipeline_subnet_b", "pipeline_task_definition",
    ])
    error_message = "the startup script must export every Airflow Variable the DAG reads"
  }
}

run "stages_run_on_fargate_sized_by_variables" {
  command = plan

  variables {
    pipeline_task_cpu    = 4096
    pipeline_task_memory = 16384
  }

  assert {
    condition = (
      aws_ecs_task_definition.pipeline[0].cpu == "4096" && aws_ecs_task_definition.pipeline[0].memory == "16384"
      && jsondecode(aws_ecs_task_definition.pipeline[0].container_definitions)[0].name == "pipeline"
      && jsondecode(aws_ecs_task_definition.pipeline[0].container_definitions)[0].image == var.pipeline_image
      && jsondecode(aws_ecs_task_definition.pipeline[0].container_definitions)[0].readonlyRootFilesystem
      && contains(jsondecode(aws_ecs_task_definition.pipeline[0].container_definitions)[0].environment, { name = "PIPELINE_STORE", value = "s3://${var.project}-data-${var.environment}/pipeline" })
    )
    error_message = "the pipeline task must run the image by digest, read-only, with the variables' CPU and memory"
  }
}

run "least_privilege" {
  command = plan

  assert {
    condition = (
      one([for s in data.aws_iam_policy_document.airflow.statement : s.resources if s.sid == "RunPipelineTasks"])
      == toset(["arn:aws:ecs:${var.region}:123456789012:task-definition/${var.project}-${var.environment}-pipeline:*"])
    )
    error_message = "MWAA may run the pipeline's task definition only"
  }

  assert {
    condition = flatten([
      for s in data.aws_iam_policy_document.airflow.statement : [for c in s.condition : c.values]
      if s.sid == "PassPipelineRolesToEcs"
    ]) == ["ecs-tasks.amazonaws.com"]
    error_message = "MWAA may pass the pipeline's roles to ECS only"
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.pipeline_task.statement :
      alltrue([for resource in s.resources : endswith(resource, "/pipeline/*")]) if s.sid == "ReadWriteRunStore"
    ])
    error_message = "a stage task may read and write the run store (pipeline/ of the data bucket) only"
  }
}
