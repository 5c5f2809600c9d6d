"""A Modbus/TCP server (pymodbus) for the labelled set: answers every unit id."""
import sys
from pymodbus.server import StartTcpServer
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusSlaveContext, ModbusServerContext

store = ModbusSlaveContext(
    di=ModbusSequentialDataBlock(0, [0] * 2000),
    co=ModbusSequentialDataBlock(0, [0] * 2000),
    hr=ModbusSequentialDataBlock(0, list(range(2000))),
    ir=ModbusSequentialDataBlock(0, list(range(2000))),
)
StartTcpServer(context=ModbusServerContext(slaves=store, single=True), address=(sys.argv[1], 502))
