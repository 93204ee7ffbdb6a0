# feature_store = feast: the DynamoDB online tables (feature_store.tf), planned against a mocked AWS provider with
# one environment's values (`make infra-test` runs this file per environment).

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

run "one_encrypted_on_demand_table_per_feature_view" {
  command = plan

  assert {
    condition = alltrue([
      for view in local.feature_views : (
        aws_dynamodb_table.features[view].name == "${var.project}-${var.environment}.${view}"
        && aws_dynamodb_table.features[view].hash_key == "entity_id"
        && aws_dynamodb_table.features[view].billing_mode == "PAY_PER_REQUEST"
        && one(aws_dynamodb_table.features[view].point_in_time_recovery).enabled
        && one(aws_dynamodb_table.features[view].server_side_encryption).enabled
      )
    ]) && length(aws_dynamodb_table.features) == length(local.feature_views) && length(local.feature_views) > 0
    error_message = "each feature view needs its table <project>-<environment>.<view>, keyed by entity_id, on demand, with PITR and the project's key"
  }

  assert {
    condition     = aws_dynamodb_table.features[local.feature_views[0]].deletion_protection_enabled == (var.environment == "production")
    error_message = "production's tables must be protected from deletion"
  }

  assert {
    condition = alltrue([
      for statement in data.aws_iam_policy_document.task_reads_features.statement :
      length(setintersection(statement.actions, ["dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "s3:PutObject", "dynamodb:Scan"])) == 0
    ])
    error_message = "the service may only read the online store and the registry"
  }

  assert {
    condition     = length(aws_iam_role_policy.ci_writes_features) == (var.create_main_branch_role ? 2 : 1)
    error_message = "the environment's CI role (and main's, where this stack has it) must be allowed to materialise"
  }

  assert {
    condition = alltrue([
      for statement in data.aws_iam_policy_document.ci_writes_features.statement :
      !contains(statement.actions, "dynamodb:CreateTable") && !contains(statement.actions, "dynamodb:DeleteTable")
    ])
    error_message = "Terraform owns the tables: CI's pipeline must not create or delete them"
  }

  assert {
    condition     = output.feature_store_uri == "s3://${var.project}-data-${var.environment}/feature_store"
    error_message = "the registry and the offline source live under feature_store/ of the data bucket"
  }
}
