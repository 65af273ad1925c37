"""Tasks are routed by name in one place (config/queues.py TASK_ROUTES), never by a `queue` task
attribute: Celery deprecates those attributes (CDeprecationWarning, issue 14.13) and 6.0 ignores them,
which would silently move a task to the default queue."""

from config.celery import app
from config.queues import Queue

# Celery warns when a task class defines these itself. ("priority" is on the list too, but Celery then fills
# it in from task_default_priority on every task, so it cannot be told apart here.)
_DEPRECATED_ATTRIBUTES = ("queue", "exchange", "exchange_type", "routing_key", "delivery_mode")


def _our_tasks():
    app.loader.import_default_modules()
    tasks = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert len(tasks) > 10  # the project's tasks are registered (the check below is not vacuous)
    return tasks


def test_no_task_sets_a_deprecated_routing_attribute():
    offenders = {
        name: [attr for attr in _DEPRECATED_ATTRIBUTES if attr in type(task).__dict__]
        for name, task in _our_tasks().items()
    }
    assert {name: attrs for name, attrs in offenders.items() if attrs} == {}


def test_every_task_is_routed_to_a_declared_queue():
    declared = {q.value for q in Queue}
    routes = {name: app.amqp.router.route({}, name)["queue"].name for name in _our_tasks()}
    assert {name: queue for name, queue in routes.items() if queue not in declared} == {}
    assert routes["postprocessing.drain"] == Queue.POSTPROCESSING
    assert routes["shortener.flush_clicks"] == Queue.DEFAULT


def test_on_rabbitmq_every_queue_is_a_quorum_queue_on_a_topic_exchange_with_publisher_confirms():
    from config.queues import broker_settings

    options = {"visibility_timeout": 30}
    amqp = broker_settings("amqp://guest:guest@127.0.0.1:5672/parley", options)
    queues = {q.name: q for q in amqp["task_queues"]}
    assert set(queues) == {q.value for q in Queue}
    assert {q.queue_arguments["x-queue-type"] for q in queues.values()} == {"quorum"}
    # topic: Celery's native delayed delivery (countdowns on quorum queues) re-routes on "#.<routing key>"
    assert {(q.exchange.name, q.exchange.type, q.routing_key) for q in queues.values()} == {
        (name, "topic", name) for name in queues
    }
    assert amqp["broker_transport_options"] == {"visibility_timeout": 30, "confirm_publish": True}
    assert amqp["worker_detect_quorum_queues"] is True
    assert amqp["task_create_missing_queue_type"] == "quorum"
    # Redis: nothing declared, its options as they are
    assert broker_settings("redis://127.0.0.1:6379/0", options) == {"broker_transport_options": options}
